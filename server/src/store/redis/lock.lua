-- One lock operation, atomically: the rule of `LockRow::apply` in server/src/store/locks.rs
-- (the store contract suite checks that both agree). See the module doc of store/redis.rs.
--
-- KEYS: 1 the room's locks hash (name -> "token \n until \n released \n conn \n user")
-- ARGV: 1 op (acquire, renew, release, orphan), 2 name, 3 at (ms), 4 user, 5 conn ('' for
--       none), 6 token, 7 ms (the TTL; the grace for orphan), 8 FORGET_AFTER_MS
-- Reply: {kind, token, user, conn, until} with kind granted, renewed, released, held or lost
--        (lost with no live grant: {'lost'}), or {'unchanged'}.
local key = KEYS[1]
local op, name, at, user, conn = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local token, ms = tonumber(ARGV[6]), tonumber(ARGV[7])

-- Tokens and times are integers below 2^53; Lua's own formatting would switch to exponents.
local function int(n)
  return string.format('%d', n)
end

local function parse(row)
  local parts, start = {}, 1
  for _ = 1, 4 do
    local stop = string.find(row, '\n', start, true)
    table.insert(parts, string.sub(row, start, stop - 1))
    start = stop + 1
  end
  return {token = tonumber(parts[1]), till = tonumber(parts[2]), released = parts[3],
          conn = parts[4], user = string.sub(row, start)}
end

-- `LockRow::forgettable`: the grant ended, and its token is below the time, a minute
-- (FORGET_AFTER_MS, ARGV 8) before `at`, so every operation timed from then on acts on the row
-- as on none. An acquire first deletes the room's such rows.
local before = at - tonumber(ARGV[8])
local function forgettable(g)
  return g.till <= before and g.token < before
end
if op == 'acquire' then
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    if forgettable(parse(all[i + 1])) then
      redis.call('HDEL', key, all[i])
    end
  end
end

local grant, last, live = nil, 0, false
local row = redis.call('HGET', key, name)
if row then
  grant = parse(row)
  last = grant.token
  live = grant.released == '0' and grant.till > at
end

local function save(t, till, released, c, u)
  redis.call('HSET', key, name, int(t) .. '\n' .. int(till) .. '\n' .. released .. '\n' .. c .. '\n' .. u)
end

local function reply(kind, t, u, c, till)
  return {kind, int(t), u, c, int(till)}
end

local function current()
  if live then
    return reply('lost', grant.token, grant.user, grant.conn, grant.till)
  end
  return {'lost'}
end

local function extend(c, till)
  save(grant.token, till, '0', c, grant.user)
  return reply('renewed', grant.token, grant.user, c, till)
end

if op == 'acquire' then
  if live and grant.conn ~= conn then
    return reply('held', grant.token, grant.user, grant.conn, grant.till)
  end
  if live then
    return extend(conn, at + ms)
  end
  local t = math.max(last + 1, at)
  save(t, at + ms, '0', conn, user)
  return reply('granted', t, user, conn, at + ms)
elseif op == 'renew' then
  if live and grant.token == token and grant.user == user then
    return extend(conn, at + ms)
  end
  return current()
elseif op == 'release' then
  if live and grant.token == token and grant.user == user and (conn == '' or grant.conn == conn) then
    save(grant.token, at, '1', grant.conn, grant.user)
    return reply('released', grant.token, grant.user, grant.conn, at)
  end
  return current()
else
  if live and grant.token == token and grant.conn == conn and grant.till > at + ms then
    return extend(conn, at + ms)
  end
  return {'unchanged'}
end
