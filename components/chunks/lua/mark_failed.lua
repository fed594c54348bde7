-- MarkFailed (components/chunks/src/chunk_scripts.cc documents its KEYS and ARGV).
-- Only while no producer has bound the generation since its last start (no scenario): then nothing was
-- appended by this attempt, and no later one has begun whose state this would overwrite.
if redis.call('HEXISTS', KEYS[1], 'scenario') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'state', 'failed')
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
