// The live routes' client-controlled input (docs/live.md): Last-Event-ID / from_seq / attempt (ParseResume) and
// signed links (CheckLink), and the event text for any chunk bytes: a chunk event is one event whose data
// is one line of JSON, and its text comes back unchanged when it was UTF-8.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_check.h"
#include "streamfleet/base/text.h"
#include "streamfleet/live/generation_feed.h"
#include "streamfleet/live/signed_link.h"
#include "streamfleet/live/sse_events.h"

using namespace streamfleet::live;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // Split the input into the pieces a request could carry.
  size_t nl = in.find('\n');
  std::string_view a = in.substr(0, nl);
  std::string_view b = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);

  auto r = ParseResume(std::string(a), std::string(b));
  if (r.ok() && !r->ended) FUZZ_CHECK(r->after_seq >= -1);
  // Any chunk id a client can send back names the same seq and attempt as the event it came with.
  if (r.ok() && !r->ended && r->after_seq >= 0) {
    std::string id_line = ChunkEvent(r->after_seq, "", r->attempt);
    std::string id = id_line.substr(4, id_line.find('\n') - 4);
    auto back = ParseResume(id, std::nullopt);
    FUZZ_CHECK(back.ok() && back->after_seq == r->after_seq && back->attempt == r->attempt);
  }
  auto r3 = ParseResume(std::nullopt, std::string(a), std::string(b));
  if (r3.ok()) FUZZ_CHECK(!r3->ended && r3->after_seq >= -1);
  auto r2 = ParseResume(std::nullopt, std::string(a));
  if (r2.ok()) FUZZ_CHECK(!r2->ended && r2->after_seq >= -1);

  // A link never checks out for a path other than the one signed, whatever exp and sig say.
  LinkCheck c = CheckLink("token", "/v1/orgs/1/events", a, b, 0);
  if (c == LinkCheck::kOk) FUZZ_CHECK(b == SignLink("token", "/v1/orgs/1/events", std::stoll(std::string(a))));

  std::string ev = ChunkEvent(7, in);
  FUZZ_CHECK(ev.rfind("id: 7\nevent: chunk\ndata: ", 0) == 0);
  FUZZ_CHECK(ev.size() >= 2 && ev.substr(ev.size() - 2) == "\n\n");
  std::string_view line = std::string_view(ev).substr(25, ev.size() - 27);
  FUZZ_CHECK(line.find('\n') == std::string_view::npos && line.find('\r') == std::string_view::npos);
  auto j = nlohmann::json::parse(line, nullptr, false);
  FUZZ_CHECK(!j.is_discarded());
  if (!streamfleet::FirstInvalidUtf8(in)) FUZZ_CHECK(j["text"].get<std::string>() == in);

  // The order rule: whatever arrives, a reader sees strictly increasing seqs.
  GenerationFeed feed;
  int64_t next = 0, last = -1;
  for (size_t i = 0; i + 1 < size; i += 2) {
    feed.Add(data[i] % 16, std::string(1, static_cast<char>(data[i + 1])));
    std::string out;
    int64_t before = next;
    feed.Take(&next, 1 << 16, &out);
    FUZZ_CHECK(next >= before);
    if (next > before) {
      FUZZ_CHECK(next - 1 > last);
      last = next - 1;
    }
  }
  return 0;
}
