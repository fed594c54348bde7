#pragma once
// Numbers out of a Redis hash read into a map (HGETALL of a buffer's :meta, a generation's :ctl, a task's
// status record). The hash may be missing a field or, written by hand or by an older process, hold text
// that is not a number: both read as the fallback, never as an exception on a consumer's thread.
#include <cstdint>
#include <map>
#include <string>

namespace streamfleet {

int64_t IntField(const std::map<std::string, std::string>& fields, const std::string& name, int64_t fallback = 0);

}  // namespace streamfleet
