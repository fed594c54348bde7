-- ResetGeneration (components/chunks/src/chunk_scripts.cc documents its KEYS and ARGV).
local ctl = redis.call('HMGET', KEYS[1], 'next_seq', 'attempt', 'scenario', 'state', 'compacted_chunks', 'resets')
local handed = tonumber(ctl[1] or '0')
local applied = redis.call('HGET', KEYS[3], 'received_chunks')
-- A compacted generation's meta hash expires after GENERATION_DELETE_GRACE (GENERATION_DELETE_AFTER_COMPACT):
-- what was applied is then what the compaction counted.
if not applied and ctl[4] == 'compacted' then applied = ctl[5] end
if tonumber(applied or '0') < handed then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6])
redis.call('ZREM', KEYS[5], ARGV[1])
-- The attempt's number outlives the reset: the appends stamp it on their envelopes, so a live stream tells the
-- earlier attempt's chunks (same seqs, other text) from this one's. The hash has no scenario, so the next
-- append still starts a new life of the generation. It counts up only when something was appended since the
-- last start (the first append binds a scenario): generation.run resets before every attempt, and after a cut
-- stream too, and a reset with no text to take back is no new attempt.
local attempt = tonumber(ctl[2] or '0')
if ctl[3] then attempt = attempt + 1 end
if attempt > 0 then
  -- started_after: the finalize stream's last entry now. A finalization queued before it (an earlier
  -- attempt's final marker or idle timeout, its entry still unread) must not compact this attempt's first
  -- chunks (Finalizer). An entry id, not a time: exact within a millisecond too.
  local last = redis.call('XREVRANGE', KEYS[7], '+', '-', 'COUNT', 1)
  local after = '0-0'
  if #last > 0 then after = last[1][1] end
  -- resets counts every reset, also one that is no new attempt: a live stream waiting for the attempt's first
  -- chunk waits again from here (a chain of retries that fail before their first chunk, each after a backoff).
  redis.call('HSET', KEYS[1], 'attempt', string.format('%d', attempt), 'started_after', after,
    'resets', string.format('%d', tonumber(ctl[6] or '0') + 1))
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
