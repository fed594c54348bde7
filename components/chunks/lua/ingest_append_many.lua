-- IngestAppendMany: several IngestAppend calls in one (chunk_scripts.cc documents its KEYS and ARGV). Prefixed by
-- chunk_scripts.cc with IngestAppend's body as `local function append(KEYS, ARGV)`, so each request is checked
-- and written exactly as by a call of its own, with its own keys and arguments; a refusal (an error reply) is
-- that request's answer, not the others'. Entering a script and converting its arguments is a good part of what
-- a one-chunk call costs Redis: ingest sends the requests of one event-loop turn together.
--
-- An error raised inside one request (a Redis command failing, say WRONGTYPE on a key) is that request's answer
-- too: the requests before it were written and are answered so. Except the refusals of a server that takes no
-- writes now (OOM, READONLY, MISCONF, NOREPLICAS): Redis raises those only at a script's first write, so nothing
-- was written, and they fail the whole call, as each request would have failed alone, where a client (READONLY:
-- a failover) sees them as the call's own error.
local whole = {'OOM', 'READONLY', 'MISCONF', 'NOREPLICAS'}
local out = {}
local ki, ai = 0, 2
for r = 1, tonumber(ARGV[1]) do
  local nk, na = tonumber(ARGV[ai]), tonumber(ARGV[ai + 1])
  ai = ai + 2
  local k, a = {}, {}
  for x = 1, nk do k[x] = KEYS[ki + x] end
  for x = 1, na do a[x] = ARGV[ai + x - 1] end
  ki, ai = ki + nk, ai + na
  local ok, res = pcall(append, k, a)
  if ok then
    out[r] = res
  else
    -- (Redis 7.0 raises a command's error as its message string; raised again as a table, the call's error
    -- keeps its code rather than becoming "ERR user_script:...".)
    local err = type(res) == 'table' and res.err or tostring(res)
    for _, code in ipairs(whole) do
      if string.sub(err, 1, #code + 1) == code .. ' ' then error({err = err}) end
    end
    out[r] = redis.error_reply(err)
  end
end
return out
