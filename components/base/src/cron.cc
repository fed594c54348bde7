#include "streamfleet/base/cron.h"

#include <charconv>
#include <ctime>
#include <vector>

#include "streamfleet/base/config.h"

namespace streamfleet {

namespace {

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kHourMs = 60 * kMinuteMs;
constexpr int64_t kDayMs = 24 * kHourMs;
constexpr int64_t kSearchMs = 5 * 366 * kDayMs;

const char* kMonths[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
const char* kDays[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

// A number, or a name of `names` (first = `first`), case-insensitive.
std::optional<int> Value(const std::string& s, const char** names, int count, int first) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) return v;
  if (names == nullptr || s.size() != 3) return std::nullopt;
  std::string up = s;
  for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (int i = 0; i < count; ++i) {
    if (up == names[i]) return first + i;
  }
  return std::nullopt;
}

// One field into `bits` (values lo..hi). Returns false when it is malformed or out of range; `any` is set
// when the field is `*` (or `*/1`).
template <size_t N>
bool ParseField(const std::string& field, int lo, int hi, const char** names, int name_count, int name_first,
                std::bitset<N>& bits, bool& any) {
  any = field == "*" || field == "*/1";
  for (const std::string& part : SplitList(field, ',')) {
    std::string range = part;
    int step = 1;
    if (auto slash = part.find('/'); slash != std::string::npos) {
      auto s = Value(part.substr(slash + 1), nullptr, 0, 0);
      if (!s || *s < 1 || *s > hi) return false;
      step = *s;
      range = part.substr(0, slash);
    }
    int a = lo, b = hi;
    if (range != "*") {
      auto dash = range.find('-');
      auto first = Value(range.substr(0, dash), names, name_count, name_first);
      if (!first) return false;
      a = b = *first;
      if (dash != std::string::npos) {
        auto last = Value(range.substr(dash + 1), names, name_count, name_first);
        if (!last) return false;
        b = *last;
      } else if (part.find('/') != std::string::npos) {
        b = hi;  // "a/n": from a to the end, as Vixie cron
      }
    }
    if (a < lo || b > hi || a > b) return false;
    for (int v = a; v <= b; v += step) bits.set(static_cast<size_t>(v));
  }
  return true;
}

struct Civil {
  int minute, hour, mday, month, wday;
};
Civil CivilOf(int64_t ms) {
  time_t t = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&t, &tm);
  return {tm.tm_min, tm.tm_hour, tm.tm_mday, tm.tm_mon + 1, tm.tm_wday};
}

int64_t FloorTo(int64_t ms, int64_t unit) { return ms - ((ms % unit) + unit) % unit; }

}  // namespace

StatusOr<CronSchedule> CronSchedule::Parse(const std::string& text) {
  CronSchedule c;
  c.text_ = text;
  std::string t = text;
  while (!t.empty() && t.back() == ' ') t.pop_back();
  while (!t.empty() && t.front() == ' ') t.erase(0, 1);
  if (t.rfind("@every ", 0) == 0) {
    auto d = ParseDurationMs(t.substr(7), 1000);
    if (!d.ok() || *d < 1000) return Status::InvalidArgument("\"" + text + "\": @every needs a duration of at least 1s");
    c.every_ms_ = *d;
    return c;
  }
  static const std::pair<const char*, const char*> kMacros[] = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
      {"@daily", "0 0 * * *"},  {"@midnight", "0 0 * * *"}, {"@hourly", "0 * * * *"}};
  for (const auto& [macro, expansion] : kMacros) {
    if (t == macro) t = expansion;
  }
  std::vector<std::string> f;
  for (size_t i = 0; i < t.size();) {
    size_t j = t.find(' ', i);
    if (j == std::string::npos) j = t.size();
    if (j > i) f.push_back(t.substr(i, j - i));
    i = j + 1;
  }
  if (f.size() != 5) {
    return Status::InvalidArgument("\"" + text + "\": a cron expression has 5 fields (minute hour day month weekday)");
  }
  bool any = false;
  std::bitset<8> wdays;
  if (!ParseField(f[0], 0, 59, nullptr, 0, 0, c.minutes_, any)) return Status::InvalidArgument("\"" + text + "\": bad minute field");
  if (!ParseField(f[1], 0, 23, nullptr, 0, 0, c.hours_, any)) return Status::InvalidArgument("\"" + text + "\": bad hour field");
  if (!ParseField(f[2], 1, 31, nullptr, 0, 0, c.mdays_, c.mday_any_)) {
    return Status::InvalidArgument("\"" + text + "\": bad day-of-month field");
  }
  if (!ParseField(f[3], 1, 12, kMonths, 12, 1, c.months_, any)) return Status::InvalidArgument("\"" + text + "\": bad month field");
  if (!ParseField(f[4], 0, 7, kDays, 7, 0, wdays, c.wday_any_)) {
    return Status::InvalidArgument("\"" + text + "\": bad day-of-week field");
  }
  for (int d = 0; d < 7; ++d) c.wdays_[static_cast<size_t>(d)] = wdays[static_cast<size_t>(d)];
  if (wdays[7]) c.wdays_.set(0);  // 7 is Sunday too
  return c;
}

bool CronSchedule::DayMatches(int mday, int wday) const {
  const bool m = mdays_[static_cast<size_t>(mday)], w = wdays_[static_cast<size_t>(wday)];
  if (mday_any_ || wday_any_) return m && w;  // one of them is * (all set): the other decides
  return m || w;
}

std::optional<int64_t> CronSchedule::Next(int64_t after_ms) const {
  if (every_ms_ > 0) return FloorTo(after_ms, every_ms_) + every_ms_;
  // Minute by minute, skipping whole days and hours that cannot match: a few hundred steps at most a year.
  int64_t t = FloorTo(after_ms, kMinuteMs) + kMinuteMs;
  for (const int64_t end = after_ms + kSearchMs; t <= end;) {
    Civil c = CivilOf(t);
    if (!months_[static_cast<size_t>(c.month)] || !DayMatches(c.mday, c.wday)) {
      t = FloorTo(t, kDayMs) + kDayMs;
    } else if (!hours_[static_cast<size_t>(c.hour)]) {
      t = FloorTo(t, kHourMs) + kHourMs;
    } else if (!minutes_[static_cast<size_t>(c.minute)]) {
      t += kMinuteMs;
    } else {
      return t;
    }
  }
  return std::nullopt;
}

std::optional<int64_t> CronSchedule::Prev(int64_t at_ms) const {
  if (every_ms_ > 0) return FloorTo(at_ms, every_ms_);
  int64_t t = FloorTo(at_ms, kMinuteMs);
  for (const int64_t end = at_ms - kSearchMs; t >= end;) {
    Civil c = CivilOf(t);
    if (!months_[static_cast<size_t>(c.month)] || !DayMatches(c.mday, c.wday)) {
      t = FloorTo(t, kDayMs) - kMinuteMs;  // the last minute of the day before
    } else if (!hours_[static_cast<size_t>(c.hour)]) {
      t = FloorTo(t, kHourMs) - kMinuteMs;
    } else if (!minutes_[static_cast<size_t>(c.minute)]) {
      t -= kMinuteMs;
    } else {
      return t;
    }
  }
  return std::nullopt;
}

}  // namespace streamfleet
