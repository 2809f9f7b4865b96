-- Settle one finished request: its hold (unless it expired already) gives back what it
-- reserved in each of its budget buckets; each bucket listed is charged the real cost;
-- each tokens-per-minute limit is corrected by the real usage minus what was admitted.
--
-- KEYS[1] holds, KEYS[2] hold records, KEYS[3 .. 2+nb] buckets to charge, then nt tpm keys
-- ARGV: now (ms; "" = the server's clock), hold id, actual (nano-USD), nb, nt,
--   bucket ttl (s), then per tpm key: limit, token difference
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local hold, actual = ARGV[2], tonumber(ARGV[3])
local nb, nt, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if hold ~= '' and redis.call('ZREM', KEYS[1], hold) == 1 then
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
for j = 1, nb do
  local key = KEYS[2 + j]
  if actual > 0 then redis.call('HINCRBY', key, 'spent', actual) end
  redis.call('EXPIRE', key, ttl)
end
for i = 1, nt do
  local key = KEYS[2 + nb + i]
  local tat = tonumber(redis.call('GET', key))
  if tat then
    local limit, tokens = tonumber(ARGV[5 + 2 * i]), tonumber(ARGV[6 + 2 * i])
    tat = tat + tokens * 60000 / limit
    if tat < now then tat = now end
    redis.call('SET', key, string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
  end
end
return 1
