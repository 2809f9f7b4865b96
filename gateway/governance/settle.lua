-- Settle a batch of finished requests: each hold (unless it expired already) gives back
-- what it reserved in its budget buckets; each bucket is charged the batch's real cost
-- in it; each tokens-per-minute limit is corrected by the batch's real usage minus what
-- was admitted.
--
-- KEYS[1] holds, KEYS[2] hold records, KEYS[3..] the buckets and tpm keys, each once
-- ARGV[1] JSON: {"now": ms or -1 (the server's clock), "ttl": bucket ttl (s),
--   "holds": [hold id, ...], "spent": [[key index, nano-USD], ...],
--   "tokens": [[key index, limit, token difference], ...]}
local batch = cjson.decode(ARGV[1])
local now = batch.now
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
for _, hold in ipairs(batch.holds) do
  if redis.call('ZREM', KEYS[1], hold) == 1 then
    local record = redis.call('HGET', KEYS[2], hold)
    if record then
      local held = nil
      for part in string.gmatch(record, '[^\n]+') do
        if held == nil then
          held = tonumber(part)
        else
          redis.call('HINCRBY', part, 'held', -held)
        end
      end
    end
    redis.call('HDEL', KEYS[2], hold)
  end
end
for _, spent in ipairs(batch.spent) do
  local key = KEYS[spent[1]]
  if spent[2] > 0 then redis.call('HINCRBY', key, 'spent', string.format('%d', spent[2])) end
  redis.call('EXPIRE', key, batch.ttl)
end
for _, tokens in ipairs(batch.tokens) do
  local key = KEYS[tokens[1]]
  local tat = tonumber(redis.call('GET', key))
  if tat then
    tat = tat + tokens[3] * 60000 / tokens[2]
    if tat < now then tat = now end
    redis.call('SET', key, string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
  end
end
return 1
