// The status page: reads the gateway's JSON endpoints every REFRESH_MS and draws them.
// Every value from the gateway is put in the page as text (textContent), never as HTML.
"use strict";

(function () {
  const REFRESH_MS = 2000;
  const KEY_STORE = "switchboard.adminKey"; // sessionStorage: this tab only
  const $ = (selector) => document.querySelector(selector);
  let timer = null;
  let selected = null; // the request id whose record is open

  class Refused extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function adminKey() {
    return sessionStorage.getItem(KEY_STORE);
  }

  async function api(path) {
    const key = adminKey();
    const headers = key ? { authorization: `Bearer ${key}` } : {};
    const response = await fetch(path, { headers, cache: "no-store" });
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      body = null;
    }
    if (response.ok) return body;
    const message = (body && body.error && body.error.message) || `HTTP ${response.status}`;
    if (response.status === 401 || response.status === 403) {
      throw new Refused(response.status, message);
    }
    throw new Error(message);
  }

  // --- formatting -------------------------------------------------------------------

  const text = (value) => (value === null || value === undefined ? "–" : String(value));
  const ms = (value) => (value === null || value === undefined ? "–" : `${Math.round(value)} ms`);
  const fixed = (value, digits) =>
    value === null || value === undefined ? "–" : Number(value).toFixed(digits);
  const usd = (value) => {
    if (value === null || value === undefined) return "–";
    if (value === 0) return "$0";
    return value < 0.01 ? `$${value.toPrecision(3)}` : `$${value.toFixed(2)}`;
  };
  const percent = (ratio) => `${(ratio * 100).toFixed(1)} %`;
  const clock = (iso) => (iso ? iso.slice(11, 23) : "–");

  function cell(row, value, className) {
    const td = document.createElement("td");
    td.textContent = value;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function badge(row, label, className) {
    const td = document.createElement("td");
    const span = document.createElement("span");
    span.className = `badge ${className}`;
    span.textContent = label;
    td.appendChild(span);
    row.appendChild(td);
    return td;
  }

  function useBar(row, spent, limit) {
    const td = document.createElement("td");
    if (limit === null || limit === undefined) {
      td.textContent = "–";
      row.appendChild(td);
      return td;
    }
    const ratio = limit > 0 ? spent / limit : 1;
    const bar = document.createElement("span");
    bar.className = "bar" + (ratio >= 1 ? " over" : ratio >= 0.8 ? " warn" : "");
    const fill = document.createElement("span");
    fill.style.width = `${Math.min(ratio, 1) * 100}%`;
    bar.appendChild(fill);
    const label = document.createElement("span");
    label.className = "bar-text";
    label.textContent = `${percent(ratio)} of ${usd(limit)}`;
    td.append(bar, label);
    row.appendChild(td);
    return td;
  }

  function fill(tbody, items, render) {
    const rows = items.map((item) => {
      const row = document.createElement("tr");
      render(row, item);
      return row;
    });
    tbody.replaceChildren(...rows);
  }

  function sectionError(sectionId, error) {
    const p = document.querySelector(`#${sectionId} .section-error`);
    p.hidden = !error;
    p.textContent = error ? `Could not read this: ${error.message}` : "";
  }

  // --- sections -----------------------------------------------------------------------

  function renderScoreboard(board) {
    const store = board.store;
    $("#store-line").textContent =
      `store: ${store.backend}${store.degraded ? " — DEGRADED: " + text(store.detail) : ""}` +
      ` · statistics ${Math.round(board.snapshot_age_ms)} ms old`;
    fill($("#scoreboard tbody"), board.data, (row, d) => {
      const s = d.stats;
      cell(row, d.model);
      cell(row, d.provider);
      cell(row, d.provider_model_id);
      badge(row, d.health.replace("_", " "), d.health);
      cell(row, ms(s.latency_p50_ms), "num");
      cell(row, ms(s.latency_p95_ms), "num");
      cell(row, ms(s.ttft_p95_ms), "num");
      cell(row, fixed(s.tokens_per_second, 0), "num");
      cell(row, percent(s.error_rate), "num");
      cell(row, text(s.requests), "num");
      cell(row, text(s.in_flight), "num");
      cell(row, fixed(d.input_per_mtok, 2), "num");
      cell(row, fixed(d.output_per_mtok, 2), "num");
      row.dataset.deployment = `${d.model}/${d.provider}`;
    });
  }

  function renderTraffic(traffic) {
    const series = traffic.deployments.map((d, index) => ({
      name: `${d.model} · ${d.provider}`,
      color: window.SwitchboardChart.color(index),
      values: d.served,
    }));
    const canvas = $("#traffic-chart");
    const drawn = window.SwitchboardChart.share(canvas, {
      start: traffic.start,
      step: traffic.slot_seconds,
      series,
    });
    canvas.dataset.slots = String(drawn);
    const served = series.reduce((sum, one) => sum + one.values.reduce((a, b) => a + b, 0), 0);
    const failed = traffic.failed.reduce((a, b) => a + b, 0);
    const minutes = Math.round((traffic.failed.length * traffic.slot_seconds) / 60);
    $("#traffic-line").textContent =
      `last ${minutes} min, ${traffic.slot_seconds} s slots, this process: ` +
      `${served} served, ${failed} not served`;
    const items = series.map((one) => {
      const li = document.createElement("li");
      const swatch = document.createElement("i");
      swatch.style.background = one.color;
      const total = one.values.reduce((a, b) => a + b, 0);
      li.append(swatch, `${one.name}: ${total} (${served ? percent(total / served) : "–"})`);
      return li;
    });
    $("#traffic-legend").replaceChildren(...items);
  }

  // sums of the ledger's rows (grouped by team, key and model) along one dimension
  function sumBy(rows, dimension) {
    const sums = new Map();
    for (const row of rows) {
      const name = row[dimension] || "(none)";
      const sum = sums.get(name) || { name, requests: 0, tokens: 0, cost: 0 };
      sum.requests += row.requests || 0;
      sum.tokens += (row.prompt_tokens || 0) + (row.completion_tokens || 0);
      sum.cost += row.cost_usd || 0;
      sums.set(name, sum);
    }
    return [...sums.values()].sort((a, b) => b.cost - a.cost || a.name.localeCompare(b.name));
  }

  function renderSpend(usage, budgets) {
    const daily = new Map();
    for (const b of budgets) if (b.period === "daily") daily.set(`${b.scope}:${b.name}`, b);
    const spendTable = (id, dimension, scope) =>
      fill($(`${id} tbody`), sumBy(usage.data, dimension), (row, sum) => {
        cell(row, sum.name);
        cell(row, text(sum.requests), "num");
        cell(row, text(sum.tokens), "num");
        cell(row, usd(sum.cost), "num");
        if (scope) {
          const budget = daily.get(`${scope}:${sum.name}`);
          useBar(row, budget ? budget.spent_usd + budget.reserved_usd : 0, budget && budget.limit_usd);
        }
      });
    spendTable("#spend-team", "team", "team");
    spendTable("#spend-key", "key", "key");
    spendTable("#spend-model", "model", null);
    const total = usage.total;
    $("#spend-line").textContent =
      `(UTC ${usage.from}): ${usd(total.cost_usd)} for ${total.requests} requests`;
    fill($("#budgets tbody"), budgets, (row, b) => {
      cell(row, b.scope);
      cell(row, b.name || "(whole gateway)");
      cell(row, b.period);
      cell(row, usd(b.limit_usd), "num");
      cell(row, usd(b.spent_usd), "num");
      cell(row, usd(b.reserved_usd), "num");
      cell(row, usd(b.remaining_usd), "num");
      useBar(row, b.spent_usd + b.reserved_usd, b.limit_usd);
    });
  }

  function tries(attempts) {
    return attempts
      .map((a) => `${a.provider} ${a.status === null ? "–" : a.status} ${a.error} ${Math.round(a.latency_ms)} ms`)
      .join("; ");
  }

  function renderRequests(list) {
    fill($("#requests tbody"), list.data, (row, g) => {
      const m = g.routing_metadata;
      cell(row, clock(g.created_at));
      cell(row, g.id.length > 18 ? `${g.id.slice(0, 8)}…${g.id.slice(-8)}` : g.id).title = g.id;
      cell(row, text(g.key));
      cell(row, text(g.model));
      badge(row, String(g.status), `s${String(g.status)[0]}`);
      cell(row, m ? `${m.provider} · ${m.provider_model_id}` : g.error_code || "–");
      cell(row, m ? m.routing_strategy : "–");
      cell(row, g.attempts.length ? tries(g.attempts) : "", "tries");
      cell(row, ms(g.timings.duration_ms), "num");
      cell(row, usd(g.cost.usd), "num");
      row.dataset.id = g.id;
      row.tabIndex = 0;
      if (g.id === selected) row.classList.add("selected");
    });
  }

  async function showGeneration(id) {
    selected = id;
    for (const row of document.querySelectorAll("#requests tbody tr")) {
      row.classList.toggle("selected", row.dataset.id === id);
    }
    const panel = $("#generation");
    panel.hidden = false;
    $("#generation-title").textContent = `Request ${id}`;
    $("#generation-summary").replaceChildren();
    $("#generation-json").textContent = "loading…";
    try {
      const g = await api(`/v1/generations/${encodeURIComponent(id)}`);
      const m = g.routing_metadata;
      const facts = [
        ["status", `${g.status}${g.error_code ? " " + g.error_code : ""}`],
        ["key / team", `${text(g.key)} / ${text(g.team)}`],
        ["model asked", text(g.model)],
        ["served by", m ? `${m.provider} · ${m.provider_model_id} (${m.model_canonical})` : "nobody"],
        ["routing strategy", m ? m.routing_strategy : "–"],
        ["failed tries", g.attempts.length ? tries(g.attempts) : "none"],
        ["duration / serving try / TTFT", `${ms(g.timings.duration_ms)} / ${ms(g.timings.latency_ms)} / ${ms(g.timings.ttft_ms)}`],
        ["tokens", g.usage ? `${g.usage.prompt_tokens} in, ${g.usage.completion_tokens} out` : "–"],
        ["cost", `${usd(g.cost.usd)}${g.cost.estimated ? " (estimated)" : ""}`],
      ];
      const items = [];
      for (const [term, value] of facts) {
        const dt = document.createElement("dt");
        dt.textContent = term;
        const dd = document.createElement("dd");
        dd.textContent = value;
        items.push(dt, dd);
      }
      $("#generation-summary").replaceChildren(...items);
      $("#generation-json").textContent = JSON.stringify(g, null, 2);
    } catch (err) {
      $("#generation-json").textContent = `Could not read it: ${err.message}`;
    }
  }

  // --- the refresh loop and the key ---------------------------------------------------

  function askForKey(message) {
    $("#status").hidden = true;
    $("#auth").hidden = false;
    $("#change-key").hidden = true;
    $("#auth-message").textContent = message;
    $("#updated").textContent = "admin key needed";
    $("#admin-key").focus();
  }

  async function refresh() {
    const sections = {
      board: api("/v1/providers"),
      traffic: api("/v1/traffic"),
      usage: api("/v1/usage?group_by=team,key,model"),
      budgets: api("/v1/budgets"),
      requests: api("/v1/requests?limit=30"),
    };
    const names = Object.keys(sections);
    const results = await Promise.allSettled(Object.values(sections));
    const got = {};
    names.forEach((name, i) => (got[name] = results[i]));
    const refused = results.find((r) => r.status === "rejected" && r.reason instanceof Refused);
    if (refused) {
      const err = refused.reason;
      const hadKey = Boolean(adminKey());
      sessionStorage.removeItem(KEY_STORE);
      askForKey(
        hadKey
          ? `The gateway refused this admin key: ${err.message}`
          : `This gateway's status page needs its admin key. (${err.message})`,
      );
      return false;
    }
    $("#auth").hidden = true;
    $("#status").hidden = false;
    $("#change-key").hidden = !adminKey();
    const show = (id, result, render) => {
      sectionError(id, result.status === "rejected" ? result.reason : null);
      if (result.status === "fulfilled") render(result.value);
    };
    show("deployments", got.board, renderScoreboard);
    show("traffic", got.traffic, renderTraffic);
    const spendFailed = [got.usage, got.budgets].find((r) => r.status === "rejected");
    sectionError("spend", spendFailed ? spendFailed.reason : null);
    if (!spendFailed) renderSpend(got.usage.value, got.budgets.value.data);
    show("recent", got.requests, renderRequests);
    $("#updated").textContent = `updated ${new Date().toISOString().slice(11, 19)} UTC`;
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes) + 1);
    return true;
  }

  async function loop() {
    clearTimeout(timer);
    let ok = false;
    document.body.dataset.busy = "1"; // a refresh in flight (tests wait for it to end)
    try {
      ok = await refresh();
    } catch (err) {
      $("#updated").textContent = `refresh failed: ${err.message}`;
      ok = true; // the gateway may be restarting: keep trying
    } finally {
      document.body.dataset.busy = "0";
    }
    if (ok && $("#auto").checked) timer = setTimeout(loop, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("#admin-key").value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY_STORE, key);
      $("#admin-key").value = "";
      $("#auth-message").textContent = "";
      loop();
    });
    $("#change-key").addEventListener("click", () => {
      clearTimeout(timer);
      sessionStorage.removeItem(KEY_STORE);
      askForKey("Enter another admin key.");
    });
    $("#auto").addEventListener("change", () => {
      if ($("#auto").checked) loop();
      else clearTimeout(timer);
    });
    $("#requests tbody").addEventListener("click", (event) => {
      const row = event.target.closest("tr");
      if (row && row.dataset.id) showGeneration(row.dataset.id);
    });
    $("#requests tbody").addEventListener("keydown", (event) => {
      const row = event.target.closest("tr");
      if (event.key === "Enter" && row && row.dataset.id) showGeneration(row.dataset.id);
    });
    $("#generation-close").addEventListener("click", () => {
      selected = null;
      $("#generation").hidden = true;
      for (const row of document.querySelectorAll("#requests tbody tr.selected")) {
        row.classList.remove("selected");
      }
    });
    loop();
  });
})();
