-- One page of history and the head it belongs to, from one snapshot (a script runs alone).
-- See the module doc of store/redis.rs.
--
-- KEYS: 1 head hash (epoch, seq), 2 log stream, 3 ids hash
-- ARGV: 1 fresh epoch, 2 after, 3 limit, 4 now (ms), 5 max events, 6 max age (ms),
--       7 expiry (ms) of an epoch created by a read
local head_key, log_key, ids_key = KEYS[1], KEYS[2], KEYS[3]
local now, max_events, max_age = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

local function int(n)
  return string.format('%d', n)
end

local epoch = redis.call('HGET', head_key, 'epoch')
if not epoch then
  -- The epoch a reader sees must be the one the room's first append uses, so the read creates
  -- it (the append script does the same on its side). Until an append makes the room real,
  -- the record expires, so reading names never published to does not grow Redis for good.
  epoch = ARGV[1]
  redis.call('DEL', log_key, ids_key)
  redis.call('HSET', head_key, 'epoch', epoch, 'seq', '0')
  redis.call('PEXPIRE', head_key, ARGV[7])
  return {epoch, '0', '1', {}}
end
local head = tonumber(redis.call('HGET', head_key, 'seq') or '0')

-- The oldest kept event is the first within both limits; entries before it are gone for
-- readers already and are removed by the room's next publish.
local oldest, start, found, count = head + 1, '-', false, 1
repeat
  local entries = redis.call('XRANGE', log_key, start, '+', 'COUNT', count)
  for _, entry in ipairs(entries) do
    local seq = tonumber(string.match(entry[1], '^%d+'))
    if seq > head - max_events and tonumber(entry[2][6]) >= now - max_age then
      oldest, found = seq, true
      break
    end
    start = '(' .. entry[1]
  end
  local exhausted = #entries < count
  count = 64
until found or exhausted

local events = {}
local limit = tonumber(ARGV[3])
if limit > 0 and oldest <= head then
  local first = math.max(tonumber(ARGV[2]) + 1, oldest)
  events = redis.call('XRANGE', log_key, int(first) .. '-0', '+', 'COUNT', limit)
end
return {epoch, int(head), int(oldest), events}
