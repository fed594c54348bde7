#include "streamfleet/observability/stream_gauges.h"

#include <algorithm>

#include "streamfleet/redis/stream_admin.h"

namespace streamfleet {

namespace {
prometheus::Family<prometheus::Gauge>& Family(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}
}  // namespace

StreamGauges::StreamGauges(prometheus::Registry& r)
    : length_(Family(r, "streamfleet_stream_length", "Entries in the stream")),
      pending_(Family(r, "streamfleet_stream_pending", "Entries delivered but not acknowledged")),
      lag_(Family(r, "streamfleet_stream_lag", "Entries not yet delivered to the group")),
      oldest_pending_(Family(r, "streamfleet_stream_oldest_pending_seconds", "Age of the oldest pending entry")),
      consumers_(Family(r, "streamfleet_stream_consumers", "Consumers in the group")) {}

void StreamGauges::Sample(RedisClient& redis, const std::vector<std::string>& streams) {
  for (const auto& s : streams) {
    auto st = GetStreamStats(redis, s);
    if (!st.ok()) continue;
    length_.Add({{"stream", s}}).Set(static_cast<double>(st->length));
    for (const auto& g : st->groups) {
      prometheus::Labels l = {{"stream", s}, {"group", g.name}};
      pending_.Add(l).Set(static_cast<double>(g.pending));
      lag_.Add(l).Set(static_cast<double>(std::max<int64_t>(0, g.lag)));
      oldest_pending_.Add(l).Set(g.oldest_pending_seconds);
      consumers_.Add(l).Set(static_cast<double>(g.consumers));
    }
  }
}

}  // namespace streamfleet
