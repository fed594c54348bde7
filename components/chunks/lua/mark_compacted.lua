#!lua flags=allow-oom
-- MarkCompacted (components/chunks/src/chunk_scripts.cc documents its KEYS and ARGV).
-- allow-oom: run even when Redis is full under maxmemory-policy noeviction. It writes a few small fields and
-- lets a finalized generation's buffer go; refused, the row was committed and this retried for ever, and
-- what finalizing frees stayed in Redis.
-- The producer started over while the row was being written: the keys hold the next attempt, not what was
-- compacted (its own finalization marks them).
if (redis.call('HGET', KEYS[1], 'attempt') or '0') ~= ARGV[4] then return 0 end
local rc = tonumber(redis.call('HGET', KEYS[3], 'received_chunks') or '0')
redis.call('HSET', KEYS[1], 'last_finalize_id', ARGV[3])
if rc ~= tonumber(ARGV[1]) then
  redis.call('EXPIRE', KEYS[1], ARGV[5], 'NX')  -- as below
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'compacted', 'compacted_chunks', rc)
local grace = tonumber(ARGV[2])
-- Negative: now (EXPIRE with a negative TTL deletes the key), a manual compaction's "delete the buffer".
if grace ~= 0 then
  redis.call('EXPIRE', KEYS[2], grace)
  redis.call('EXPIRE', KEYS[3], grace)
  redis.call('EXPIRE', KEYS[4], grace)
end
-- The HSETs above create the control hash when it had expired (a row rebuilt from generation_chunks) or never
-- existed: it must not outlive its generation for ever. NX: a TTL it already has stands.
redis.call('EXPIRE', KEYS[1], ARGV[5], 'NX')
return 1
