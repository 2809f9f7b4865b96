-- wrk script: POST a small OpenAI chat body and print one machine-readable
-- result line from done() (wrk's own text output is not meant for parsing).
-- usage: wrk ... -s bench/chat.lua URL -- MODEL [stream]

function init(args)
  local model = args[1] or "bench-json"
  local stream = args[2] == "stream" and ', "stream": true' or ""
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  -- BENCH_GOVERNANCE=1: the gateway checks a key with limits and budgets (the floor ignores it)
  local key = os.getenv("BENCH_KEY")
  if key then wrk.headers["Authorization"] = "Bearer " .. key end
  wrk.body = string.format(
    '{"model": "%s", "messages": ['
      .. '{"role": "system", "content": "You are a terse assistant."}, '
      .. '{"role": "user", "content": "Say hello in five words."}], '
      .. '"max_tokens": 32%s}',
    model, stream)
end

function done(summary, latency, requests)
  local e = summary.errors
  -- latency is in microseconds; wrk counts HTTP status >= 400 as e.status
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "non_2xx": %d, "errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
