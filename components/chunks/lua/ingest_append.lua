-- IngestAppend (components/chunks/src/chunk_scripts.cc documents its KEYS and ARGV).
-- One read of the control hash and one write to it (below): each redis.call is a good part of this script's
-- cost, and one chunk per request is the common call.
local ctl = redis.call('HMGET', KEYS[1], 'scenario', 'ingested_bytes', 'next_seq', 'finish_total', 'attempt')
local bound = ctl[1]
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
-- A batch request (ARGV[7] parts > 0) is n chunks whose seqs this script assigns, without keys: nothing to
-- check or record per chunk, and their envelopes arrive as ChunkBatch parts this script does not look into.
local parts = tonumber(ARGV[7])
-- What was recorded for this generation's seqs and keys. A new control hash means a new life of the
-- generation: whatever an older ingest hash says (it may outlive an expired control hash) does not count.
local fields = {}
if bound and parts == 0 then
  for i = 1, n do
    local b = 8 + (i - 1) * 5
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
if parts > 0 then
  bytes, need = tonumber(ARGV[8]), n
end
for i = 1, parts > 0 and 0 or n do
  local b = 8 + (i - 1) * 5
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
    if finish_total == false then finish_total = tonumber(ctl[4] or '0') end
    local t = tonumber(num)
    if t < finish_total then
      return redis.error_reply('SFCONFLICT total_conflict: total_chunks ' .. t .. ' is smaller than the ' .. finish_total .. ' of an earlier finish')
    end
    -- A new total below the seqs already handed out (and those this request takes before it): the chunks past
    -- it would be assembled anyway, and every later batch would queue the generation's finalization again. Not
    -- for the same total again (a retry, skipped below, whatever was appended since).
    local handed = tonumber(ctl[3] or '0') + need
    if t ~= finish_total and t < handed then
      return redis.error_reply('SFCONFLICT total_conflict: total_chunks ' .. t .. ' is smaller than the ' .. handed .. ' chunks already given seqs')
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
local ingested = tonumber(ctl[2] or '0')
if bytes > 0 and ingested + bytes > tonumber(ARGV[3]) then
  return redis.error_reply('SFLIMIT generation would exceed ' .. ARGV[3] .. ' bytes')
end
-- Seqs the script assigns stay below GENERATION_MAX_CHUNKS (the last argument), as client seqs do (ingest checks
-- those): the compactor refuses a seq beyond it, and would dead-letter the whole entry, valid chunks included,
-- after this request had been answered 202.
local max_chunks = tonumber(ARGV[#ARGV])
if need > 0 and tonumber(ctl[3] or '0') + need > max_chunks then
  return redis.error_reply('SFLIMIT generation would exceed ' .. max_chunks .. ' chunks (GENERATION_MAX_CHUNKS)')
end
-- Every check passed: write. The new values are computed here (the script runs alone, so read-modify-write is
-- safe) and set in one HSET.
local ttl = ARGV[4]  -- the string, as EXPIRE takes it
-- A protobuf varint field (tag, then v in 7-bit groups), appended to serialized bytes: in protobuf a scalar
-- field that occurs again later in the message wins, so the result carries v without Lua parsing the rest.
local function varint_field(tag, v)
  local out = {tag}
  while v >= 128 do
    out[#out + 1] = v % 128 + 128
    v = math.floor(v / 128)
  end
  out[#out + 1] = v
  return string.char(unpack(out))
end
local seq = tonumber(ctl[3] or '0')
-- After ResetGeneration the chunks are stamped with their attempt (field 14 of an envelope, 3 of a batch), so
-- that a live stream can tell them from the earlier attempt's. The first attempt (0) adds nothing.
local stamp, batch_stamp = '', ''
if ctl[5] and ctl[5] ~= '0' then
  stamp = varint_field(112, tonumber(ctl[5]))
  batch_stamp = varint_field(24, tonumber(ctl[5]))
end
local set = {}
if not bound then set = {'scenario', ARGV[1]} end
if bytes > 0 then
  set[#set + 1] = 'ingested_bytes'
  set[#set + 1] = string.format('%d', ingested + bytes)  -- %d: a number would go through %.14g
end
if need > 0 then
  set[#set + 1] = 'next_seq'
  set[#set + 1] = string.format('%d', seq + need)
end
if new_total then
  set[#set + 1] = 'finish_total'
  set[#set + 1] = string.format('%d', new_total)
end
if #set > 0 then redis.call('HSET', KEYS[1], unpack(set)) end
if not bound then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('DEL', KEYS[3])
end
if own then redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[5]) end
-- The request's chunks go into one stream entry, one field "e" each, in order (envelope version 3 when there
-- are several): one XADD per request instead of one per chunk, which for NDJSON is most of this script's cost.
-- An entry is closed at 64 KiB of envelopes or 1000 of them, so a consumer's read of COUNT entries stays
-- bounded and unpack stays within Lua's stack.
local id = ''
-- A batch: each part becomes one entry (field "b", a ChunkBatch) once its first_seq (field 2) is appended;
-- ingest closed the parts at 64 KiB or 1000 envelopes, as below.
local first_seq = seq
for k = 1, parts do
  id = redis.call('XADD', KEYS[2], '*', 'b', ARGV[7 + 2 * k] .. varint_field(16, seq) .. batch_stamp)
  seq = seq + tonumber(ARGV[8 + 2 * k])
end
local ai = 0
local entry, entry_bytes = {}, 0
for i = 1, parts > 0 and 0 or n do
  local b = 8 + (i - 1) * 5
  local kind = ARGV[b + 1]
  if kind == 'a' then ai = ai + 1 end
  if not skip[i] then
    local e = ARGV[b]
    if kind == 'a' then
      -- Field 5 as a varint, inline below 2^14: without the helper's table (every table and string made here
      -- is garbage the script's collector pays for, per chunk).
      local v = seq
      if v < 128 then
        e = e .. string.char(40, v)
      elseif v < 16384 then
        e = e .. string.char(40, v % 128 + 128, (v - v % 128) / 128)
      else
        e = e .. varint_field(40, v)
      end
      aseq[ai] = seq
      if ARGV[b + 2] ~= '' then
        sums[#sums + 1] = 'k' .. ARGV[b + 2]
        sums[#sums + 1] = seq .. ':' .. ARGV[b + 3]
      end
      seq = seq + 1
    end
    if stamp ~= '' then e = e .. stamp end
    if n == 1 then
      id = redis.call('XADD', KEYS[2], '*', 'e', e)
    else
      entry[#entry + 1] = 'e'
      entry[#entry + 1] = e
      entry_bytes = entry_bytes + #e
      if entry_bytes >= 65536 or #entry >= 2000 then
        id = redis.call('XADD', KEYS[2], '*', unpack(entry))
        entry, entry_bytes = {}, 0
      end
    end
  end
end
if #entry > 0 then id = redis.call('XADD', KEYS[2], '*', unpack(entry)) end
for f = 1, #sums, 1000 do  -- unpack's stack limit
  redis.call('HSET', KEYS[3], unpack(sums, f, math.min(f + 999, #sums)))
end
-- Lives as long as the generation's control hash (a new one clears it, above).
if #sums > 0 then redis.call('EXPIRE', KEYS[3], ttl) end
-- The 4th element says this request started a new life of the generation (ingest emits generation.started);
-- a batch's seqs are the 5th and on (first_seq + position), not listed in the 2nd.
if parts > 0 then return {id, aseq, replayed, bound and 0 or 1, first_seq} end
return {id, aseq, replayed, bound and 0 or 1}
