#!lua flags=allow-oom
-- PublishEvent (components/chunks/src/chunk_scripts.cc documents its KEYS and ARGV).
-- A finalization's generation.compacted, written even when Redis is full (allow-oom, as MarkCompacted next to
-- it): one small entry of a stream trimmed to its MAXLEN. A plain XADD is refused then, and the finalization
-- that had committed its row retried for ever.
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'type', ARGV[2], 'e', ARGV[3])
