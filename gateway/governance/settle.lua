-- Settle one batch of finished requests, once: each hold (unless it expired already)
-- gives back what it reserved in its budget buckets; each bucket is charged the batch's
-- real cost in it; each tokens-per-minute limit is corrected by the batch's real usage
-- minus what was admitted; the ledger's fields and the keys' last use are written.
--
-- A batch carries its process's epoch and a sequence number; KEYS[3] holds the last
-- number applied for that epoch. A batch at or below it was applied already (a reply
-- lost, or a batch sent again until a replica acknowledged it) and changes nothing.
--
-- KEYS[1] holds, KEYS[2] hold records, KEYS[3] this process's last applied sequence,
-- KEYS[4..] the buckets, tpm keys, ledger days and the keys' last-use hash, each once
-- ARGV[1] JSON: {"now": ms or -1 (the server's clock), "ttl": bucket ttl (s),
--   "seq": n, "seq_ttl": ms, "holds": [hold id, ...], "spent": [[key index, nano-USD], ...],
--   "tokens": [[key index, limit, token difference], ...],
--   "ledger": [[key index, retention (s), field, amount, field, amount, ...], ...],
--   "used": [key index, name, value, name, value, ...] or []}
-- Returns 1 when applied, 0 when it had been.
local batch = cjson.decode(ARGV[1])
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
if batch.seq <= last then
  return 0
end
redis.call('SET', KEYS[3], batch.seq, 'PX', batch.seq_ttl)
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
for _, day in ipairs(batch.ledger) do
  local key = KEYS[day[1]]
  for i = 3, #day, 2 do
    redis.call('HINCRBY', key, day[i], string.format('%d', day[i + 1]))
  end
  redis.call('EXPIRE', key, day[2])
end
local used = batch.used
if #used > 0 then
  local key = KEYS[used[1]]
  for i = 2, #used, 2 do
    redis.call('HSET', key, used[i], used[i + 1])
  end
end
return 1
