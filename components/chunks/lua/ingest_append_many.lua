-- IngestAppendMany: several IngestAppend calls in one (chunk_scripts.cc documents its KEYS and ARGV). Prefixed by
-- chunk_scripts.cc with IngestAppend's body as `local function append(KEYS, ARGV)`, so each request is checked
-- and written exactly as by a call of its own, with its own keys and arguments; a refusal (an error reply) is
-- that request's answer, not the others'. Entering a script and converting its arguments is a good part of what
-- a one-chunk call costs Redis: ingest sends the requests of one event-loop turn together.
-- An error raised (not returned) fails the whole call, and then nothing was written: Redis refuses a script's
-- writes (OOM, READONLY, MISCONF) only at its first write, and lets a script that has written go on.
local out = {}
local ki, ai = 0, 2
for r = 1, tonumber(ARGV[1]) do
  local nk, na = tonumber(ARGV[ai]), tonumber(ARGV[ai + 1])
  ai = ai + 2
  local k, a = {}, {}
  for x = 1, nk do k[x] = KEYS[ki + x] end
  for x = 1, na do a[x] = ARGV[ai + x - 1] end
  ki, ai = ki + nk, ai + na
  out[r] = append(k, a)
end
return out
