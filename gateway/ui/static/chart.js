// Charts drawn on <canvas> by hand: no library, no build step.
// SwitchboardChart.share: stacked shares (0-100 %) per time slot.
// SwitchboardChart.lines: time series as lines (used by the dashboard rendering too).
"use strict";

(function () {
  const PALETTE = [
    "#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795",
    "#b7791f", "#4a5568", "#e53e3e", "#3182ce", "#9f7aea", "#48bb78",
  ];
  const LIGHT = { axis: "#6b7385", grid: "#e3e6ec" };
  const DARK = { axis: "#8e8e9e", grid: "#2c2e36" };
  let theme = LIGHT; // set by each drawing call
  const FONT = "11px system-ui, sans-serif";

  function color(index) {
    return PALETTE[index % PALETTE.length];
  }

  // size the drawing buffer to the element, for sharp lines on any screen
  function prepare(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(canvas.clientWidth, 100);
    const height = Math.max(canvas.clientHeight, 80);
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = FONT;
    return { ctx, width, height };
  }

  function clock(epoch) {
    return new Date(epoch * 1000).toISOString().slice(11, 19);
  }

  function timeAxis(ctx, box, from, to) {
    ctx.fillStyle = theme.axis;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const ticks = 6;
    for (let i = 0; i <= ticks; i++) {
      const t = from + ((to - from) * i) / ticks;
      const x = box.left + (box.width * i) / ticks;
      ctx.textAlign = i === 0 ? "left" : i === ticks ? "right" : "center";
      ctx.fillText(clock(t), x, box.top + box.height + 4);
    }
  }

  function valueAxis(ctx, box, max, format) {
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let i = 0; i <= 4; i++) {
      const y = box.top + box.height - (box.height * i) / 4;
      ctx.strokeStyle = theme.grid;
      ctx.beginPath();
      ctx.moveTo(box.left, y);
      ctx.lineTo(box.left + box.width, y);
      ctx.stroke();
      ctx.fillStyle = theme.axis;
      ctx.fillText(format((max * i) / 4), box.left - 6, y);
    }
  }

  function emptyNote(ctx, box, text) {
    ctx.fillStyle = theme.axis;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(text, box.left + box.width / 2, box.top + box.height / 2);
  }

  // data: {start, step, series: [{values: [count per slot], color}]}; a slot without
  // traffic stays blank. Returns how many slots had traffic.
  function share(canvas, data) {
    theme = data.dark ? DARK : LIGHT;
    const { ctx, width, height } = prepare(canvas);
    const box = { left: 46, top: 8, width: width - 58, height: height - 30 };
    valueAxis(ctx, box, 100, (v) => `${Math.round(v)} %`);
    const slots = data.series.length ? data.series[0].values.length : 0;
    timeAxis(ctx, box, data.start, data.start + slots * data.step);
    let drawn = 0;
    const slotWidth = slots ? box.width / slots : 0;
    for (let s = 0; s < slots; s++) {
      const total = data.series.reduce((sum, one) => sum + one.values[s], 0);
      if (!total) continue;
      drawn += 1;
      let y = box.top + box.height;
      for (const one of data.series) {
        const h = (box.height * one.values[s]) / total;
        ctx.fillStyle = one.color;
        ctx.fillRect(box.left + s * slotWidth, y - h, Math.max(slotWidth - 1, 1), h);
        y -= h;
      }
    }
    if (!drawn) emptyNote(ctx, box, "no requests served in this span yet");
    return drawn;
  }

  // data: {from, to, series: [{points: [[epoch, value], ...], color}], format, dark}
  function lines(canvas, data) {
    theme = data.dark ? DARK : LIGHT;
    const { ctx, width, height } = prepare(canvas);
    const box = { left: 78, top: 8, width: width - 90, height: height - 30 };
    let max = 0;
    for (const one of data.series) for (const [, v] of one.points) if (isFinite(v) && v > max) max = v;
    max = max > 0 ? max * 1.1 : 1;
    valueAxis(ctx, box, max, data.format || ((v) => v.toPrecision(3)));
    timeAxis(ctx, box, data.from, data.to);
    const span = data.to - data.from || 1;
    let drawn = 0;
    for (const one of data.series) {
      ctx.strokeStyle = one.color;
      ctx.lineWidth = 1.6;
      ctx.beginPath();
      let started = false;
      for (const [t, v] of one.points) {
        if (!isFinite(v)) {
          started = false; // a gap (NaN: e.g. a quantile of no requests)
          continue;
        }
        const x = box.left + (box.width * (t - data.from)) / span;
        const y = box.top + box.height - (box.height * v) / max;
        if (started) ctx.lineTo(x, y);
        else ctx.moveTo(x, y);
        started = true;
        drawn += 1;
      }
      ctx.stroke();
    }
    if (!drawn) emptyNote(ctx, box, "no data");
    return drawn;
  }

  window.SwitchboardChart = { color, share, lines };
})();
