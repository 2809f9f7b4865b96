-- Admit a batch of requests, one after another, atomically: for each, every rate limit
-- and every budget it counts in is checked first, and only when all fit is anything taken
-- (GCRA arrival times pushed on, the worst-case cost reserved in each budget bucket as a
-- hold that expires). The requests of one moment share this one call: one round trip.
--
-- KEYS[1] holds: zset of hold id -> expiry (ms)
-- KEYS[2] hold records: hash of hold id -> "amount\nbucket key\nbucket key..."
-- KEYS[3..] the rate keys (theoretical arrival time, ms) and budget buckets (hashes of
--   `spent` and `held`, nano-USD) the batch touches, each once
-- ARGV[1] JSON: {"now": ms or -1 (the server's clock), "ttl": bucket ttl (s), "asks": [
--   [hold id, hold lifetime ms, amount, [[key index, limit, cost], ...], [[key index,
--   limit], ...]], ...]}  (key indexes into KEYS)
-- Returns JSON: per ask, [1, remaining_1, reset_ms_1, ...] or [0, refused index, retry ms]
local batch = cjson.decode(ARGV[1])
local now = batch.now
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local window = 60000

-- reservations whose replica never settled them (it died) give their amount back
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 64)
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

local function admit(ask)
  local hold, hold_ms, amount, rates, budgets = ask[1], ask[2], ask[3], ask[4], ask[5]
  local tats = {}
  for i, rate in ipairs(rates) do
    local limit, cost = rate[2], rate[3]
    local tat = tonumber(redis.call('GET', KEYS[rate[1]])) or now
    if tat < now then tat = now end
    tat = tat + cost * window / limit
    if tat - now > window then
      return {0, i - 1, math.ceil(tat - now - window)}
    end
    tats[i] = tat
  end
  for j, budget in ipairs(budgets) do
    local used = redis.call('HMGET', KEYS[budget[1]], 'spent', 'held')
    if (tonumber(used[1]) or 0) + (tonumber(used[2]) or 0) + amount > budget[2] then
      return {0, #rates + j - 1, 0}
    end
  end
  local out = {1}
  for i, rate in ipairs(rates) do
    local limit, tat = rate[2], tats[i]
    redis.call('SET', KEYS[rate[1]], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
    local remaining = math.floor((window - (tat - now)) / (window / limit))
    if remaining < 0 then remaining = 0 end
    if remaining > limit then remaining = limit end
    out[#out + 1] = remaining
    out[#out + 1] = math.ceil(tat - now)
  end
  if #budgets > 0 then
    local record = {string.format('%d', amount)}
    for _, budget in ipairs(budgets) do
      local key = KEYS[budget[1]]
      redis.call('HINCRBY', key, 'held', amount)
      redis.call('EXPIRE', key, batch.ttl)
      record[#record + 1] = key
    end
    redis.call('ZADD', KEYS[1], now + hold_ms, hold)
    redis.call('HSET', KEYS[2], hold, table.concat(record, '\n'))
  end
  return out
end

local results = {}
for n, ask in ipairs(batch.asks) do
  results[n] = admit(ask)
end
return cjson.encode(results)
