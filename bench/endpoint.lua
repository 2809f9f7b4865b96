-- wrk script for bench/endpoints.py: POST one endpoint's typical body and print one
-- machine-readable result line. usage: wrk ... -s bench/endpoint.lua URL -- KIND MODEL
-- KIND: chat | chat-stream | embeddings | completions | completions-stream

local bodies = {
  ["chat"] = '{"model": "%s", "messages": [{"role": "system", "content": "You are a terse '
    .. 'assistant."}, {"role": "user", "content": "Say hello in five words."}], "max_tokens": 32}',
  ["chat-stream"] = '{"model": "%s", "messages": [{"role": "system", "content": "You are a '
    .. 'terse assistant."}, {"role": "user", "content": "Say hello in five words."}], '
    .. '"max_tokens": 32, "stream": true}',
  -- what the openai SDK sends: base64 is its default encoding
  ["embeddings"] = '{"model": "%s", "input": ["The food was delicious and the waiter was '
    .. 'friendly."], "encoding_format": "base64"}',
  ["completions"] = '{"model": "%s", "prompt": "Say hello in five words.", "max_tokens": 32}',
  ["completions-stream"] = '{"model": "%s", "prompt": "Say hello in five words.", '
    .. '"max_tokens": 32, "stream": true}',
}

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = string.format(bodies[args[1]], args[2])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
      .. '"non_2xx": %d, "errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
