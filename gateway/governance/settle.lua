-- Settle one finished request: its hold (if it has not expired) gives back the
-- reservation, each bucket is charged the real cost, and each tokens-per-minute limit is
-- corrected by the real usage minus what was admitted.
--
-- KEYS[1] holds, KEYS[2] hold records, KEYS[3 .. 2+nb] budget buckets, then nt tpm keys
-- ARGV: now (ms; "" = the server's clock), hold id, amount, actual (nano-USD), nb, nt,
--   bucket ttl (s), then per tpm key: limit, token difference
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local hold, amount, actual = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local nb, nt, ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local released = hold ~= '' and redis.call('ZREM', KEYS[1], hold) == 1
if released then
  redis.call('HDEL', KEYS[2], hold)
end
for j = 1, nb do
  local key = KEYS[2 + j]
  if released then redis.call('HINCRBY', key, 'held', -amount) end
  if actual > 0 then redis.call('HINCRBY', key, 'spent', actual) end
  redis.call('EXPIRE', key, ttl)
end
for i = 1, nt do
  local key = KEYS[2 + nb + i]
  local tat = tonumber(redis.call('GET', key))
  if tat then
    local limit, tokens = tonumber(ARGV[6 + 2 * i]), tonumber(ARGV[7 + 2 * i])
    tat = tat + tokens * 60000 / limit
    if tat < now then tat = now end
    redis.call('SET', key, string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
  end
end
return 1
