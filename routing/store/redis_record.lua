-- One deployment's write: fields.apply() in Redis, plus this replica's in-flight count,
-- plus an expiry so that a deployment nobody uses any more vanishes.
--
-- A delta carries a sequence number, increasing per replica process; KEYS[3] keeps the
-- last one applied. A delta at or below it was applied already (its reply was lost, or
-- it was sent again until a replica acknowledged it) and is not added twice.
--
-- KEYS[1] the window hash, KEYS[2] the state hash, KEYS[3] this process's last applied
-- sequence number for the deployment (one hash tag: one cluster slot)
-- ARGV[1] keep_from: the first bucket still inside the window
-- ARGV[2] now (epoch seconds)
-- ARGV[3] expiry (ms) after the last write, or after an open circuit or a cooldown ends
-- ARGV[4] the DeploymentDelta as msgspec JSON (Decayed as [total, weight, at, half_life]),
--         or "" when there is only an in-flight count to report
-- ARGV[5] replica name, ARGV[6] its in-flight count, or "" for none
-- ARGV[7] the delta's sequence number, or "" for none
local window, state = KEYS[1], KEYS[2]
local keep_from = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local expiry = tonumber(ARGV[3])

local function number(key, field, default)
  local raw = redis.call('HGET', key, field)
  if raw then return tonumber(raw) end
  return default
end

-- %.17g: a double survives the round trip through text (tostring keeps 14 digits)
local function put(key, field, value)
  redis.call('HSET', key, field, string.format('%.17g', value))
end

local fresh = ARGV[4] ~= ''
if fresh and ARGV[7] ~= '' then
  local seq = tonumber(ARGV[7])
  if seq <= tonumber(redis.call('GET', KEYS[3]) or '0') then
    fresh = false
  else
    redis.call('SET', KEYS[3], ARGV[7], 'PX', expiry)
  end
end

if fresh then
  local delta = cjson.decode(ARGV[4])
  for field, amount in pairs(delta.counters) do
    redis.call('HINCRBYFLOAT', window, field, amount)
  end
  local stale = {}
  for _, field in ipairs(redis.call('HKEYS', window)) do
    if tonumber(string.match(field, '^(-?%d+):')) < keep_from then
      stale[#stale + 1] = field
    end
  end
  for i = 1, #stale, 1000 do  -- unpack() has a stack limit
    redis.call('HDEL', window, unpack(stale, i, math.min(i + 999, #stale)))
  end
  -- time-decayed averages: bring the stored one and the delta's to the later time, add
  local ln2 = math.log(2)
  for name, average in pairs(delta.averages) do  -- {total, weight, at, half_life}
    local total, weight, at, half_life = average[1], average[2], average[3], average[4]
    local stored_weight = number(state, name .. '.w', nil)
    if stored_weight then
      local stored_total = number(state, name .. '.s', 0)
      local stored_at = number(state, name .. '.t', at)
      local later = math.max(stored_at, at)
      local old = math.exp(-(later - stored_at) * ln2 / half_life)
      local new = math.exp(-(later - at) * ln2 / half_life)
      total = stored_total * old + total * new
      weight = stored_weight * old + weight * new
      at = later
    end
    put(state, name .. '.s', total)
    put(state, name .. '.w', weight)
    put(state, name .. '.t', at)
  end
  put(state, 'seen', math.max(number(state, 'seen', 0), delta.seen))
  if delta.reset_failures then
    put(state, 'cf', delta.failures)
  else
    put(state, 'cf', number(state, 'cf', 0) + delta.failures)
  end
  put(state, 'cool', math.max(number(state, 'cool', 0), delta.cooldown_until))
  if delta.open_until ~= cjson.null then
    if delta.open_until == 0 then
      put(state, 'open', 0)
    else
      put(state, 'open', math.max(number(state, 'open', 0), delta.open_until))
    end
  end
end

if ARGV[6] ~= '' then
  redis.call('HSET', state, 'if:' .. ARGV[5], ARGV[6], 'ifat:' .. ARGV[5], ARGV[2])
end

-- keep a health decision (circuit open, rate-limit cooldown) for as long as it holds
local holds = math.max(number(state, 'open', 0), number(state, 'cool', 0)) - now
local ttl = math.floor(math.max(expiry, holds * 1000 + expiry))
redis.call('PEXPIRE', window, ttl)
redis.call('PEXPIRE', state, ttl)
return 1
