-- Keeps a document's snapshot unless the kept one is of the same epoch and not older
-- (`DocSnapshot::replaces`), in one step so two nodes compacting at once keep the newer.
-- KEYS[1]: the room's documents hash. ARGV: doc name, epoch, seq, state (bytes).
-- The hash holds `<doc>:v` ("<epoch>:<seq>") and `<doc>:s` (the state) per document.
local kept = redis.call('HGET', KEYS[1], ARGV[1] .. ':v')
if kept then
  local epoch, seq = string.match(kept, '^(%d+):(%d+)$')
  if epoch == ARGV[2] and tonumber(seq) >= tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1] .. ':v', ARGV[2] .. ':' .. ARGV[3], ARGV[1] .. ':s', ARGV[4])
return 1
