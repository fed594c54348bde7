-- SweepDeadlines (components/chunks/src/chunk_scripts.cc documents its KEYS and ARGV).
local now = now_ms(ARGV[1])
local cut = now
local wm = tonumber(ARGV[3])
if wm and wm > 0 and wm < cut then cut = wm end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cut, 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('XADD', KEYS[2], '*', 'm', m, 'r', 'idle_timeout', 'at', now)
end
return #due
