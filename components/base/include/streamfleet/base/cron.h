#pragma once
// Cron expressions for SCHEDULES (schedules.h), in UTC. Debian has no C++ cron library, so this is a small
// one: the five fields of crontab(5), minute hour day-of-month month day-of-week, each `*`, a number, a
// range `a-b`, a step `*/n` or `a-b/n`, or a comma list of those; months JAN-DEC and days SUN-SAT by name;
// day-of-week 0 and 7 are Sunday. As in Vixie cron, when both day fields are restricted a day matching
// either runs. Macros: @yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly, and
// `@every <duration>` (30s, 5m, 1h: occurrences at multiples of the duration since the epoch, as
// PERIODIC_TASKS).
//
// Thread-safety: a CronSchedule is immutable after Parse. Errors: kInvalidArgument naming the field.
#include <bitset>
#include <cstdint>
#include <optional>
#include <string>

#include "streamfleet/base/status.h"

namespace streamfleet {

class CronSchedule {
 public:
  static StatusOr<CronSchedule> Parse(const std::string& text);

  // The first occurrence strictly after after_ms; nullopt when there is none within 5 years (e.g. 30 FEB).
  std::optional<int64_t> Next(int64_t after_ms) const;
  // The last occurrence at or before at_ms; nullopt when there is none within 5 years.
  std::optional<int64_t> Prev(int64_t at_ms) const;

  const std::string& text() const { return text_; }

 private:
  bool DayMatches(int mday, int wday) const;

  std::string text_;
  int64_t every_ms_ = 0;  // @every: occurrences at multiples of it
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> mdays_;   // 1..31
  std::bitset<13> months_;  // 1..12
  std::bitset<7> wdays_;    // 0..6, Sunday 0
  bool mday_any_ = true, wday_any_ = true;
};

}  // namespace streamfleet
