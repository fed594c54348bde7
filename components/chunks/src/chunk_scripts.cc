#include "streamfleet/chunks/chunk_scripts.h"

namespace streamfleet::scripts {

namespace {

// Redis server time in ms, unless the caller passed an override (the clock seam, tests only).
constexpr const char* kNow = R"(
local function now_ms(override)
  local o = tonumber(override)
  if o and o > 0 then return o end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
)";

}  // namespace

// Applies chunks of one or more generations (a read batch's worth) in one call.
// KEYS: per generation g (0-based) 6 keys at 6g+1..6g+6: buffer list, meta hash, seen bitmap, ctl hash,
//       deadlines zset, finalize stream. (Redis Cluster: one generation per call, its keys share a slot.)
// ARGV: 1 now override, 2 idle_ms, 3 ttl_s, 4 max_chunks, 5 G (generations), then per generation:
//       member "org:scenario:gen", nc (chunks), nf (totals), ingest time of its newest item (stream-id ms;
//       "0" = now), then nc pairs: seq, list element "<seq>:<data>" (the caller formats it: no string
//       building in Lua), then nf totals (from finish envelopes, and seq + 1 of a final chunk without one).
// Returns per generation {duplicate chunks (1-based positions among its nc), totals that changed the known
// total (1-based positions among its nf), llen, queued_finalize (0/1)}.
//
// Cost: this script is most of the compactor's Redis time, and its cost is per argument and per call:
// every ARGV string is created in Lua, every redis.call converts its arguments back. So two arguments per
// chunk, duplicates (rare) reported instead of a flag per chunk, one call per read batch with one TIME,
// and per generation a fixed number of calls (6 in the common case) however many chunks it has: one
// BITFIELD does every dedupe bit, one RPUSH every element, one HMGET + one HSET the meta counters
// (read-modify-write is safe: the script is atomic).
const LuaScript& ApplyChunks() {
  static const LuaScript s(std::string(kNow) + R"(
local now = now_ms(ARGV[1])
local idle = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local maxc = tonumber(ARGV[4])
local gens = tonumber(ARGV[5])
-- Pass 1, before anything is written (a rejected call leaves no seen bit without its chunk): validate
-- every seq and total, and build each generation's BITFIELD arguments.
local starts, ops = {}, {}
local a = 6
for g = 1, gens do
  starts[g] = a
  local nc, nf = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  if nc == nil or nf == nil then return redis.error_reply('SFINVALID malformed apply arguments') end
  local o = {}
  local p = a + 4
  for i = 1, nc do
    local v = tonumber(ARGV[p])
    if v == nil or v < 0 or v >= maxc then
      return redis.error_reply('SFINVALID seq ' .. tostring(ARGV[p]) .. ' out of range')
    end
    local j = i * 4
    o[j - 3] = 'SET'
    o[j - 2] = 'u1'
    o[j - 1] = ARGV[p]
    o[j] = '1'
    p = p + 2
  end
  for i = 1, nf do
    local v = tonumber(ARGV[p + i - 1])
    if v == nil or v < 1 or v > maxc then
      return redis.error_reply('SFINVALID total ' .. tostring(ARGV[p + i - 1]) .. ' out of range')
    end
  end
  ops[g] = o
  a = p + nf
end

local function apply(k, a, o)
  local member = ARGV[a]
  local nc, nf = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local ingested = tonumber(ARGV[a + 3])
  if not ingested or ingested <= 0 then ingested = now end
  local m = redis.call('HMGET', KEYS[k + 2], 'total_chunks', 'received_chunks', 'received_bytes', 'first_chunk_at')
  local existed = m[1] ~= false or m[2] ~= false
  local old_total = tonumber(m[1] or '0')
  local total = old_total
  -- One BITFIELD sets every seq's bit and returns the old bits in order (a seq twice in the batch: the
  -- second sees 1), so dedupe and append stay one atomic step.
  local pushed, dups, totals_changed = {}, {}, {}
  local bytes = 0
  local i = 0
  for first = 1, #o, 1000 do  -- unpack's stack limit; 1000 is a whole number of 4-argument ops
    local old = redis.call('BITFIELD', KEYS[k + 3], unpack(o, first, math.min(first + 999, #o)))
    for _, bit in ipairs(old) do
      i = i + 1
      if bit == 0 then
        local p = a + 2 + i * 2
        local e = ARGV[p + 1]
        pushed[#pushed + 1] = e
        bytes = bytes + #e - #ARGV[p] - 1
      else
        dups[#dups + 1] = i
      end
    end
  end
  local f = a + 4 + nc * 2
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
    return {dups, totals_changed, llen, 0}
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
  local state = redis.call('HGET', KEYS[k + 4], 'state')
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
    redis.call('XADD', KEYS[k + 6], '*', 'm', member, 'r', 'complete', 'at', now)
    return {dups, totals_changed, llen, 1}
  end
  if state ~= 'receiving' then redis.call('HSET', KEYS[k + 4], 'state', 'receiving') end
  -- Idle is measured in ingest time (the deadline sweep waits until the compactors have read that far):
  -- GT keeps a later deadline when an older entry (a redelivery, a claimed one) is applied after newer ones.
  redis.call('ZADD', KEYS[k + 5], 'GT', ingested + idle, member)
  return {dups, totals_changed, llen, 0}
end

local out = {}
for g = 1, gens do out[g] = apply((g - 1) * 6, starts[g], ops[g]) end
return out
)");
  return s;
}

// KEYS: 1 deadlines zset, 2 finalize stream. ARGV: 1 now override, 2 limit, 3 consumed watermark (ms of
// ingest time before which every chunk entry is applied; "0" = all of them, components/chunks/include/streamfleet/chunks/consumed_watermark.h).
// A deadline is due when it has passed and the compactors have read past it: a generation whose later
// chunks still wait in the backlog is not idle.
// Returns the number of deadlines turned into finalize entries. ZREM+XADD in one script: exactly once,
// whichever compactor runs it.
const LuaScript& SweepDeadlines() {
  static const LuaScript s(std::string(kNow) + R"(
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
)");
  return s;
}

// KEYS: 1 ctl hash, 2 buffer list, 3 meta hash, 4 seen bitmap.
// ARGV: 1 finalized received_chunks, 2 grace_s (0 = keep the buffer until its TTL), 3 finalize id.
// Returns 1 when marked compacted, 0 when chunks arrived after the snapshot (a later finalize follows).
const LuaScript& MarkCompacted() {
  static const LuaScript s(R"(
local rc = tonumber(redis.call('HGET', KEYS[3], 'received_chunks') or '0')
redis.call('HSET', KEYS[1], 'last_finalize_id', ARGV[3])
if rc ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'state', 'compacted', 'compacted_chunks', rc)
local grace = tonumber(ARGV[2])
if grace > 0 then
  redis.call('EXPIRE', KEYS[2], grace)
  redis.call('EXPIRE', KEYS[3], grace)
  redis.call('EXPIRE', KEYS[4], grace)
end
return 1
)");
  return s;
}

// The producer side of a generation, checked and applied in one atomic call (ingest, the SSE relay, the
// worker's provider stream).
// KEYS: 1 ctl hash, 2 chunk stream, 3 ingest hash (KeySchema::IngestKey), 4 owner key (standalone only: on a
//       cluster the owner lives in another slot and the caller claims it first, generation_owner.h).
// ARGV: 1 scenario id ("0" = none), 2 organization, 3 byte limit, 4 ttl_s, 5 owner ttl_s, 6 n, then per chunk
//       5: envelope (protobuf bytes), kind ('a' seq to assign, 'c' client seq, 'f' finish), number (the seq for
//       'c', the total for 'f', the chunk's idempotency key for 'a' or ""), digest of the data ('c', keyed
//       'a'), data bytes.
// Refused with nothing written (SFCONFLICT <reason>: ..., SFLIMIT ...):
//   scenario_conflict           the scenario differs from the one the generation started with;
//   generation_owned_elsewhere  the id's owner record names another organization;
//   seq_conflict                a client seq already received with other data (the same data again is a
//                               retry: accepted, not appended again, not counted toward the byte limit);
//   idempotency_key_reused      a chunk idempotency key already used for other data;
//   total_conflict              a finish whose total is smaller than an earlier finish's (equal: a retry,
//                               skipped; larger: the generation grew, appended);
//   SFLIMIT                     the generation would exceed its byte limit (counting only new data).
// A keyed chunk seen before is not appended again and answers with the seq it got then.
// Returns {last stream id ("" when nothing was appended), the seq of every 'a' chunk in order, replayed count}.
const LuaScript& IngestAppend() {
  // Seqs are reserved here, after the checks, so a rejected batch burns none and the request needs one
  // round trip. The seq goes into the envelope by appending field 5 (varint) to its bytes: in protobuf a
  // scalar field that occurs again later in the message wins, so the result is a valid envelope carrying
  // that seq without Lua having to parse or re-encode it.
  static const LuaScript s(R"(
local bound = redis.call('HGET', KEYS[1], 'scenario')
if bound and bound ~= ARGV[1] then
  return redis.error_reply('SFCONFLICT scenario_conflict: scenario_id ' .. ARGV[1] .. ' differs from ' .. bound .. ' used by this generation')
end
local own = false
if KEYS[4] then
  local owner = redis.call('GET', KEYS[4])
  if owner and owner ~= ARGV[2] then
    return redis.error_reply('SFCONFLICT generation_owned_elsewhere: this generation id is used by another organization')
  end
  -- (Re)claim on a new control hash (this organization's first request for the id, or its first after the
  -- control hash expired) and whenever the record is gone: its TTL restarts while the id is in use.
  own = not owner or not bound
end
local n = tonumber(ARGV[6])
-- What was recorded for this generation's seqs and keys. A new control hash means a new life of the
-- generation: whatever an older ingest hash says (it may outlive an expired control hash) does not count.
local fields = {}
if bound then
  for i = 1, n do
    local b = 7 + (i - 1) * 5
    local kind = ARGV[b + 1]
    if kind == 'c' then
      fields[#fields + 1] = 's' .. ARGV[b + 2]
    elseif kind == 'a' and ARGV[b + 2] ~= '' then
      fields[#fields + 1] = 'k' .. ARGV[b + 2]
    end
  end
end
local recorded = {}
if #fields > 0 then recorded = redis.call('HMGET', KEYS[3], unpack(fields)) end
local skip, sums, in_batch, aseq = {}, {}, {}, {}
local bytes, need, j, replayed = 0, 0, 0, 0
local finish_total, new_total = false, false
for i = 1, n do
  local b = 7 + (i - 1) * 5
  local kind, num, digest = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  if kind == 'c' then
    local known = in_batch[num]
    if bound then
      j = j + 1
      known = known or recorded[j]
    end
    if known then
      if known ~= digest then
        return redis.error_reply('SFCONFLICT seq_conflict: seq ' .. num .. ' was already received with different data')
      end
      skip[i] = true
    else
      in_batch[num] = digest
      sums[#sums + 1] = 's' .. num
      sums[#sums + 1] = digest
      bytes = bytes + tonumber(ARGV[b + 4])
    end
  elseif kind == 'f' then
    if finish_total == false then finish_total = tonumber(redis.call('HGET', KEYS[1], 'finish_total') or '0') end
    local t = tonumber(num)
    if t < finish_total then
      return redis.error_reply('SFCONFLICT total_conflict: total_chunks ' .. t .. ' is smaller than the ' .. finish_total .. ' of an earlier finish')
    end
    if t == finish_total then
      skip[i] = true
    else
      finish_total = t
      new_total = t
    end
  else
    local known = false
    if num ~= '' and bound then
      j = j + 1
      known = recorded[j]
    end
    if known then
      local c = string.find(known, ':', 1, true)
      if string.sub(known, c + 1) ~= digest then
        return redis.error_reply('SFCONFLICT idempotency_key_reused: the Idempotency-Key was used before for other data')
      end
      skip[i] = true
      aseq[#aseq + 1] = tonumber(string.sub(known, 1, c - 1))
      replayed = replayed + 1
    else
      aseq[#aseq + 1] = false
      need = need + 1
      bytes = bytes + tonumber(ARGV[b + 4])
    end
  end
end
if bytes > 0 and tonumber(redis.call('HGET', KEYS[1], 'ingested_bytes') or '0') + bytes > tonumber(ARGV[3]) then
  return redis.error_reply('SFLIMIT generation would exceed ' .. ARGV[3] .. ' bytes')
end
-- Every check passed: write.
local ttl = tonumber(ARGV[4])
if not bound then
  redis.call('HSET', KEYS[1], 'scenario', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('DEL', KEYS[3])
end
if own then redis.call('SET', KEYS[4], ARGV[2], 'EX', tonumber(ARGV[5])) end
if bytes > 0 then redis.call('HINCRBY', KEYS[1], 'ingested_bytes', bytes) end
if new_total then redis.call('HSET', KEYS[1], 'finish_total', new_total) end
local seq = 0
if need > 0 then seq = redis.call('HINCRBY', KEYS[1], 'next_seq', need) - need end
local function varint(v)
  local out = {}
  while v >= 128 do
    out[#out + 1] = string.char(v % 128 + 128)
    v = math.floor(v / 128)
  end
  out[#out + 1] = string.char(v)
  return table.concat(out)
end
local id = ''
local ai = 0
for i = 1, n do
  local b = 7 + (i - 1) * 5
  local kind = ARGV[b + 1]
  if kind == 'a' then ai = ai + 1 end
  if not skip[i] then
    local e = ARGV[b]
    if kind == 'a' then
      e = e .. string.char(40) .. varint(seq)
      aseq[ai] = seq
      if ARGV[b + 2] ~= '' then
        sums[#sums + 1] = 'k' .. ARGV[b + 2]
        sums[#sums + 1] = seq .. ':' .. ARGV[b + 3]
      end
      seq = seq + 1
    end
    id = redis.call('XADD', KEYS[2], '*', 'e', e)
  end
end
for f = 1, #sums, 1000 do  -- unpack's stack limit
  redis.call('HSET', KEYS[3], unpack(sums, f, math.min(f + 999, #sums)))
end
-- Lives as long as the generation's control hash (a new one clears it, above).
if #sums > 0 then redis.call('EXPIRE', KEYS[3], ttl) end
return {id, aseq, replayed}
)");
  return s;
}

const LuaScript& ResetGeneration() {
  // KEYS: 1 ctl hash, 2 buffer list, 3 meta hash, 4 seen bitmap, 5 deadlines zset, 6 ingest hash.
  // ARGV: 1 deadline member.
  // received_chunks counts distinct seqs applied and the producer wrote seqs 0..next_seq-1, so equality
  // means no chunk of the old attempt is still in a stream (a redelivery of an applied-but-unacked entry
  // after a compactor crash is the remaining, documented, window).
  static const LuaScript s(R"(
local handed = tonumber(redis.call('HGET', KEYS[1], 'next_seq') or '0')
local applied = tonumber(redis.call('HGET', KEYS[3], 'received_chunks') or '0')
if applied < handed then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6])
redis.call('ZREM', KEYS[5], ARGV[1])
return 1
)");
  return s;
}

}  // namespace streamfleet::scripts
