-- One publish, atomically: epoch, age and count retention, idempotency, if_seq, the seq, the
-- stream entry, the dedupe record and the live message. See the module doc of store/redis.rs.
--
-- KEYS: 1 head hash (epoch, seq), 2 log stream, 3 ids hash (sender \n id -> seq), 4 locks hash
--       (see lock.lua)
-- ARGV: 1 fresh epoch, 2 sender, 3 id, 4 at (ms), 5 body, 6 if_seq ('' for none), 7 now (ms),
--       8 max events, 9 max age (ms), 10 live channel, 11 room, 12 the publish command:
--       PUBLISH on one server, SPUBLISH on a cluster (the message stays on the room's shard),
--       13 the event's type ('' for none; kept as the entry's field `t`, see read_filtered.lua),
--       14 if_lock's lock name ('' for none), 15 if_lock's token
local head_key, log_key, ids_key = KEYS[1], KEYS[2], KEYS[3]
local sender, id, at, body = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, max_events, max_age = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])

-- Seqs are integers below 2^53; Lua's own number formatting would switch to exponents.
local function int(n)
  return string.format('%d', n)
end

-- Drops entries from the front that are past either limit, with their dedupe records. It
-- looks at `first` entries, then at batches: usually all it finds is one entry over the count
-- (converting entries to Lua tables is most of a script's cost, so it fetches few).
local function trim(head, first)
  local start, gone, count = '-', nil, first
  while true do
    local entries = redis.call('XRANGE', log_key, start, '+', 'COUNT', count)
    for _, entry in ipairs(entries) do
      local fields = entry[2]
      local seq = tonumber(string.match(entry[1], '^%d+'))
      if seq > head - max_events and tonumber(fields[6]) >= now - max_age then
        if gone then redis.call('XTRIM', log_key, 'MINID', int(gone + 1)) end
        return
      end
      redis.call('HDEL', ids_key, fields[4] .. '\n' .. fields[2])
      gone = seq
      start = '(' .. entry[1]
    end
    if #entries < count then break end
    count = 64
  end
  if gone then redis.call('XTRIM', log_key, 'MINID', int(gone + 1)) end
end

local state = redis.call('HMGET', head_key, 'epoch', 'seq')
local epoch, head = state[1], tonumber(state[2] or '0')
if not epoch then
  -- A room this Redis does not know: new, or lost (a restart without persistence, a flush,
  -- eviction). Its history starts over under a fresh epoch, and nothing left over from an
  -- older lineage may be served under the new one.
  epoch = ARGV[1]
  redis.call('DEL', log_key, ids_key)
  redis.call('HSET', head_key, 'epoch', epoch, 'seq', '0')
  head = 0
end
-- A read may have created the epoch with an expiry; a room with events keeps its head.
redis.call('PERSIST', head_key)

trim(head, 1)
local dedupe = sender .. '\n' .. id
local existing = redis.call('HGET', ids_key, dedupe)
if existing then
  return {'duplicate', existing}
end
if ARGV[6] ~= '' and tonumber(ARGV[6]) ~= head then
  return {'conflict', int(head)}
end
if ARGV[14] ~= '' then
  -- Fencing: stored only while the sender holds the stated grant (lock.lua's row format).
  local row = redis.call('HGET', KEYS[4], ARGV[14])
  local live = nil
  if row then
    local parts, start = {}, 1
    for _ = 1, 4 do
      local stop = string.find(row, '\n', start, true)
      table.insert(parts, string.sub(row, start, stop - 1))
      start = stop + 1
    end
    if parts[3] == '0' and tonumber(parts[2]) > tonumber(at) then
      live = {'lock_lost', parts[1], string.sub(row, start), parts[4], parts[2]}
    end
  end
  if not live or tonumber(live[2]) ~= tonumber(ARGV[15]) or live[3] ~= sender then
    return live or {'lock_lost'}
  end
end

local seq = head + 1
if ARGV[13] ~= '' then
  redis.call('XADD', log_key, int(seq) .. '-0', 'i', id, 'f', sender, 'a', at, 'b', body, 't', ARGV[13])
else
  redis.call('XADD', log_key, int(seq) .. '-0', 'i', id, 'f', sender, 'a', at, 'b', body)
end
redis.call('HSET', head_key, 'seq', int(seq))
redis.call('HSET', ids_key, dedupe, int(seq))
trim(seq, 2)
-- Every kept entry is younger than max_age, so an idle room's log and dedupe records would all
-- have aged out by the time these expire: memory stays bounded without a sweeper.
redis.call('PEXPIRE', log_key, max_age)
redis.call('PEXPIRE', ids_key, max_age)
redis.call(ARGV[12], ARGV[10],
  epoch .. '\n' .. int(seq) .. '\n' .. at .. '\n' .. ARGV[11] .. '\n' .. id .. '\n' .. sender .. '\n' .. body)
return {'stored', int(seq), epoch}
