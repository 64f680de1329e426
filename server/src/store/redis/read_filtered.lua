-- One page of a filtered history read (the activity feed) and the head it belongs to, from one
-- snapshot. See `store::filter` and the module doc of store/redis.rs. The head and the oldest
-- kept seq are found exactly as read.lua finds them (keep the two in step).
--
-- KEYS: 1 head hash (epoch, seq), 2 log stream, 3 ids hash
-- ARGV: 1 fresh epoch, 2 cursor, 3 limit (matching events), 4 now (ms), 5 max events,
--       6 max age (ms), 7 expiry (ms) of an epoch created by a read, 8 direction ('after' or
--       'before'), 9 budget (entries looked at, at most), 10 type ('' for any), 11 sender
--       ('' for any)
-- Returns {epoch, head, oldest, events, scanned} where scanned is the last seq looked at ('' if
-- none): the next page starts after (before) it even when this one has fewer events.
local head_key, log_key, ids_key = KEYS[1], KEYS[2], KEYS[3]
local now, max_events, max_age = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

local function int(n)
  return string.format('%d', n)
end

local epoch = redis.call('HGET', head_key, 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', log_key, ids_key)
  redis.call('HSET', head_key, 'epoch', epoch, 'seq', '0')
  redis.call('PEXPIRE', head_key, ARGV[7])
  return {epoch, '0', '1', {}, ''}
end
local head = tonumber(redis.call('HGET', head_key, 'seq') or '0')

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

local limit, budget = tonumber(ARGV[3]), tonumber(ARGV[9])
local kind, sender = ARGV[10], ARGV[11]
local events, scanned = {}, ''
if limit > 0 and budget > 0 and oldest <= head then
  local cursor = tonumber(ARGV[2])
  local entries
  if ARGV[8] == 'after' then
    local first = math.max(cursor + 1, oldest)
    entries = redis.call('XRANGE', log_key, int(first) .. '-0', '+', 'COUNT', budget)
  else
    if cursor <= oldest then
      return {epoch, int(head), int(oldest), {}, ''}
    end
    entries = redis.call('XREVRANGE', log_key, int(cursor - 1) .. '-0', int(oldest) .. '-0',
      'COUNT', budget)
  end
  for _, entry in ipairs(entries) do
    scanned = string.match(entry[1], '^%d+')
    -- Fields: i id, f sender, a at, b body, then t type when the event has one.
    local fields = entry[2]
    local matches = sender == '' or fields[4] == sender
    if matches and kind ~= '' then
      matches = fields[9] == 't' and fields[10] == kind
    end
    if matches then
      events[#events + 1] = entry
      if #events >= limit then break end
    end
  end
end
return {epoch, int(head), int(oldest), events, scanned}
