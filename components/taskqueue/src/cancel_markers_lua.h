#pragma once
// Lua shared by the next-task scripts (task_queue.cc): the cancel-marker check of task_control.h, run on
// the entries an XREADGROUP just returned, inside the same script, so a worker never starts a task that was
// cancelled before it was read, at no cost while nothing is cancelled (one EXISTS).

namespace streamfleet {

// Defines task_id(envelope) and drop_cancelled(cancelled, stream, group, entries, skipped). task_id reads
// the TaskEnvelope's field 1 (the id) from the protobuf wire format, scanning fields in any order (encoders
// write field 1 first, so it usually stops there). drop_cancelled returns the entries whose task is not
// marked in the zset `cancelled`; each marked one is acked, its marker removed and its id appended to
// `skipped`. An entry without a readable envelope is kept (the worker dead-letters it).
inline constexpr const char* kCancelMarkersLua = R"(
local function task_id(e)
  local pos, n = 1, #e
  local function varint()
    local v, mul = 0, 1
    while pos <= n do
      local b = string.byte(e, pos)
      pos = pos + 1
      v = v + (b % 128) * mul
      if b < 128 then return v end
      mul = mul * 128
    end
    return nil
  end
  while pos <= n do
    local key = varint()
    if not key then return nil end
    local field, wire = math.floor(key / 8), key % 8
    if wire == 0 then
      if not varint() then return nil end
    elseif wire == 1 then
      pos = pos + 8
    elseif wire == 5 then
      pos = pos + 4
    elseif wire == 2 then
      local len = varint()
      if not len then return nil end
      if field == 1 then return string.sub(e, pos, pos + len - 1) end
      pos = pos + len
    else
      return nil
    end
  end
  return nil
end
local function drop_cancelled(cancelled, stream, group, entries, skipped)
  if redis.call('EXISTS', cancelled) == 0 then return entries end
  local kept = {}
  for _, entry in ipairs(entries) do
    local id = nil
    local fields = entry[2]
    if type(fields) == 'table' then
      for j = 1, #fields - 1, 2 do
        if fields[j] == 'e' then
          id = task_id(fields[j + 1])
          break
        end
      end
    end
    if id and redis.call('ZREM', cancelled, id) == 1 then
      redis.call('XACK', stream, group, entry[1])
      skipped[#skipped + 1] = id
    else
      kept[#kept + 1] = entry
    end
  end
  return kept
end
)";

}  // namespace streamfleet
