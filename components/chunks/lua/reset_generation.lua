-- ResetGeneration (components/chunks/src/chunk_scripts.cc documents its KEYS and ARGV).
local handed = tonumber(redis.call('HGET', KEYS[1], 'next_seq') or '0')
local applied = tonumber(redis.call('HGET', KEYS[3], 'received_chunks') or '0')
if applied < handed then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6])
redis.call('ZREM', KEYS[5], ARGV[1])
return 1
