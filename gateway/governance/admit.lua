-- Admit one request, or not, atomically: every rate limit and every budget it counts in
-- is checked first, and only when all fit is anything taken (GCRA arrival times pushed
-- on, the worst-case cost reserved in each budget bucket as a hold that expires).
--
-- KEYS[1] holds: zset of hold id -> expiry (ms)
-- KEYS[2] hold records: hash of hold id -> "amount\nbucket key\nbucket key..."
-- KEYS[3 .. 2+nr] rate keys (theoretical arrival time, ms); then nb budget bucket keys
--   (hashes: `spent`, `held`, in nano-USD)
-- ARGV: now (ms; "" = the server's clock), hold id, hold lifetime (ms), amount (nano-USD),
--   nr, nb, bucket ttl (s), then per rate: limit, cost; then per budget: limit
-- Returns {1, remaining_1, reset_ms_1, ...} or {0, refused index (0-based), retry ms}.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local hold, hold_ms, amount = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local nr, nb, ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local window = 60000

-- reservations whose replica never settled them (it died) give their amount back
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 32)
for _, id in ipairs(expired) do
  local record = redis.call('HGET', KEYS[2], id)
  if record then
    local held = nil
    for part in string.gmatch(record, '[^\n]+') do
      if held == nil then
        held = tonumber(part)
      else
        redis.call('HINCRBY', part, 'held', -held)
      end
    end
    redis.call('HDEL', KEYS[2], id)
  end
  redis.call('ZREM', KEYS[1], id)
end

local tats = {}
for i = 1, nr do
  local limit, cost = tonumber(ARGV[6 + 2 * i]), tonumber(ARGV[7 + 2 * i])
  local tat = tonumber(redis.call('GET', KEYS[2 + i])) or now
  if tat < now then tat = now end
  tat = tat + cost * window / limit
  if tat - now > window then
    return {0, i - 1, math.ceil(tat - now - window)}
  end
  tats[i] = tat
end
local base = 7 + 2 * nr
for j = 1, nb do
  local used = redis.call('HMGET', KEYS[2 + nr + j], 'spent', 'held')
  if (tonumber(used[1]) or 0) + (tonumber(used[2]) or 0) + amount > tonumber(ARGV[base + j]) then
    return {0, nr + j - 1, 0}
  end
end

local out = {1}
for i = 1, nr do
  local limit, tat = tonumber(ARGV[6 + 2 * i]), tats[i]
  redis.call('SET', KEYS[2 + i], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
  local remaining = math.floor((window - (tat - now)) / (window / limit))
  if remaining < 0 then remaining = 0 end
  if remaining > limit then remaining = limit end
  out[#out + 1] = remaining
  out[#out + 1] = math.ceil(tat - now)
end
if nb > 0 then
  local record = {tostring(amount)}
  for j = 1, nb do
    local key = KEYS[2 + nr + j]
    redis.call('HINCRBY', key, 'held', amount)
    redis.call('EXPIRE', key, ttl)
    record[#record + 1] = key
  end
  redis.call('ZADD', KEYS[1], now + hold_ms, hold)
  redis.call('HSET', KEYS[2], hold, table.concat(record, '\n'))
end
return out
