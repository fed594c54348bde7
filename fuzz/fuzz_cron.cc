// Cron expressions (streamfleet/base/cron.h, SCHEDULES): any text is parsed or refused, never crashes, and a
// parsed one's occurrences are consistent: Next is strictly later, Prev not later, and an occurrence is its
// own Prev.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_check.h"
#include "streamfleet/base/cron.h"
#include "streamfleet/base/task_specs.h"

using namespace streamfleet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)ParseSchedules(text);
  auto c = CronSchedule::Parse(text);
  if (!c.ok()) return 0;
  for (int64_t t : {int64_t{0}, int64_t{1'796'285'863'103}, int64_t{4'102'444'800'000}}) {
    if (auto n = c->Next(t)) {
      FUZZ_CHECK(*n > t);
      auto p = c->Prev(*n);
      FUZZ_CHECK(p.has_value() && *p == *n);
    }
    if (auto p = c->Prev(t)) FUZZ_CHECK(*p <= t);
  }
  return 0;
}
