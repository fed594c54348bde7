#include "streamfleet/base/hash_fields.h"

#include <charconv>

namespace streamfleet {

int64_t IntField(const std::map<std::string, std::string>& fields, const std::string& name, int64_t fallback) {
  auto it = fields.find(name);
  if (it == fields.end()) return fallback;
  const std::string& s = it->second;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() ? v : fallback;
}

}  // namespace streamfleet
