-- ApplyChunks (components/chunks/src/chunk_scripts.cc documents its KEYS and ARGV).
local now = now_ms(ARGV[1])
local idle = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local maxc = tonumber(ARGV[4])
local gens = tonumber(ARGV[5])
-- Pass 1, before anything is written (a rejected call leaves no seen bit without its chunk): validate
-- every seq and total, and build each generation's BITFIELD arguments: one 'SET u<n> <first seq> <n ones>'
-- per run of consecutive seqs (in argument order, at most 52 bits: Lua numbers hold the old value exactly),
-- rather than one 'SET u1' per seq. A batch's chunks of a generation are mostly consecutive, and each
-- argument costs Lua a conversion both ways. runs[g] holds each run's length.
local ONES = {}
for n = 1, 52 do ONES[n] = string.format('%.0f', 2 ^ n - 1) end
local starts, ops, sizes, runs = {}, {}, {}, {}
local a = 6
for g = 1, gens do
  starts[g] = a
  local nc, nf = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  if nc == nil or nf == nil or tonumber(ARGV[a + 4]) == nil then
    return redis.error_reply('SFINVALID malformed apply arguments')
  end
  local o, sz, len = {}, {}, {}
  local p = a + 5
  local prev = -2
  for i = 1, nc do
    local s = ARGV[p]
    local v = tonumber(s)
    if v == nil then
      -- "<seq>/<text bytes>": a compressed element, whose length is not the text's.
      local slash = string.find(s, '/', 1, true)
      if slash then
        sz[i] = tonumber(string.sub(s, slash + 1))
        s = string.sub(s, 1, slash - 1)
        v = tonumber(s)
      end
    end
    if v == nil or v < 0 or v >= maxc then
      return redis.error_reply('SFINVALID seq ' .. tostring(ARGV[p]) .. ' out of range')
    end
    local r = #len
    if r > 0 and v == prev + 1 and len[r] < 52 then
      len[r] = len[r] + 1
    else
      r = r + 1
      len[r] = 1
      o[r * 4 - 3] = 'SET'
      o[r * 4 - 1] = s
    end
    prev = v
    p = p + 2
  end
  for r = 1, #len do
    o[r * 4 - 2] = 'u' .. len[r]
    o[r * 4] = ONES[len[r]]
  end
  for i = 1, nf do
    local v = tonumber(ARGV[p + i - 1])
    if v == nil or v < 1 or v > maxc then
      return redis.error_reply('SFINVALID total ' .. tostring(ARGV[p + i - 1]) .. ' out of range')
    end
  end
  ops[g] = o
  runs[g] = len
  sizes[g] = sz
  a = p + nf
end

local function apply(k, a, o, sz, len)
  local member = ARGV[a]
  local nc, nf = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local ingested = tonumber(ARGV[a + 3])
  if not ingested or ingested <= 0 then ingested = now end
  local ctl = redis.call('HMGET', KEYS[k + 4], 'state', 'attempt')
  local state = ctl[1]
  if tonumber(ARGV[a + 4]) < tonumber(ctl[2] or '0') then
    -- An earlier attempt's chunks after the producer started over: a compactor applied them, crashed before
    -- its ack, and they came back. In the new buffer they would take the seqs of the new attempt's text.
    local all = {}
    for i = 1, nc do all[i] = i end
    return {all, {}, redis.call('LLEN', KEYS[k + 1]), 0, 1}
  end
  local m = redis.call('HMGET', KEYS[k + 2], 'total_chunks', 'received_chunks', 'received_bytes', 'first_chunk_at')
  local existed = m[1] ~= false or m[2] ~= false
  local old_total = tonumber(m[1] or '0')
  local total = old_total
  -- One BITFIELD sets every seq's bit and returns each run's old bits, in order (a seq twice in the batch
  -- is in two runs: the second sees 1), so dedupe and append stay one atomic step. A run's first seq is
  -- its old value's highest bit.
  local pushed, dups, totals_changed = {}, {}, {}
  local bytes = 0
  local i = 0
  local r = 0
  for first = 1, #o, 1000 do  -- unpack's stack limit; 1000 is a whole number of 4-argument ops
    local old = redis.call('BITFIELD', KEYS[k + 3], unpack(o, first, math.min(first + 999, #o)))
    for _, bits in ipairs(old) do
      r = r + 1
      local n = len[r]
      for j = n - 1, 0, -1 do
        i = i + 1
        local weight = 2 ^ j
        if bits >= weight then
          bits = bits - weight
          dups[#dups + 1] = i
        else
          local p = a + 3 + i * 2
          local e = ARGV[p + 1]
          pushed[#pushed + 1] = e
          bytes = bytes + (sz[i] or (#e - #ARGV[p] - 1))
        end
      end
    end
  end
  local f = a + 5 + nc * 2
  for j = 1, nf do
    local v = tonumber(ARGV[f + j - 1])
    if v ~= total then
      total = v
      totals_changed[#totals_changed + 1] = j
    end
  end
  local llen = false
  for first = 1, #pushed, 1000 do
    llen = redis.call('RPUSH', KEYS[k + 1], unpack(pushed, first, math.min(first + 999, #pushed)))
  end
  if not llen then llen = redis.call('LLEN', KEYS[k + 1]) end
  if #pushed == 0 and #totals_changed == 0 then
    -- A redelivery or duplicate: nothing changes, not even the deadline.
    return {dups, totals_changed, llen, 0, 0}
  end
  local meta = {}
  if #pushed > 0 then
    meta = {'received_chunks', tonumber(m[2] or '0') + #pushed, 'received_bytes', tonumber(m[3] or '0') + bytes,
            'last_chunk_at', now}
    if not m[4] then
      meta[#meta + 1] = 'first_chunk_at'
      meta[#meta + 1] = now
    end
  end
  if total ~= old_total then
    meta[#meta + 1] = 'total_chunks'
    meta[#meta + 1] = total
  end
  redis.call('HSET', KEYS[k + 2], unpack(meta))
  if not existed or state == 'compacted' then
    -- New buffer, or a straggler re-opening a compacted one: (re)start the TTL of every key.
    for j = 1, 4 do redis.call('EXPIRE', KEYS[k + j], ttl) end
  end
  local complete = false
  if total > 0 then
    complete = redis.call('BITCOUNT', KEYS[k + 3], 0, total - 1, 'BIT') >= total
  end
  if complete then
    redis.call('ZREM', KEYS[k + 5], member)
    redis.call('HSET', KEYS[k + 4], 'state', 'finalizing')
    if not state then redis.call('EXPIRE', KEYS[k + 4], ttl, 'NX') end
    redis.call('XADD', KEYS[k + 6], '*', 'm', member, 'r', 'complete', 'at', now)
    return {dups, totals_changed, llen, 1, 0}
  end
  if state ~= 'receiving' then redis.call('HSET', KEYS[k + 4], 'state', 'receiving') end
  -- No state read: the control hash may have been created just now (a producer that writes the stream
  -- itself, without ingest's control hash); it expires with the buffer. NX: ingest's own TTL stands.
  if not state then redis.call('EXPIRE', KEYS[k + 4], ttl, 'NX') end
  -- Idle is measured in ingest time (the deadline sweep waits until the compactors have read that far):
  -- GT keeps a later deadline when an older entry (a redelivery, a claimed one) is applied after newer ones.
  redis.call('ZADD', KEYS[k + 5], 'GT', ingested + idle, member)
  return {dups, totals_changed, llen, 0, 0}
end

local out = {}
for g = 1, gens do out[g] = apply((g - 1) * 6, starts[g], ops[g], sizes[g], runs[g]) end
return out
