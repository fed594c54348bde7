#include "streamfleet/chunks/request_parsing.h"

#include <nlohmann/json.hpp>
#include <vector>

#include "streamfleet/base/json_input.h"
#include "streamfleet/chunks/common_chunk_json.h"

namespace streamfleet {

std::optional<int64_t> ParseId(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v <= 0) return std::nullopt;
  return v;
}

Route MatchRoute(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > pos) parts.push_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  Route r;
  if (parts.size() == 4 && parts[0] == "v1" && parts[1] == "orgs" && parts[3] == "events") {
    r.kind = Route::Kind::kEvents;
    auto org = ParseId(parts[2]);
    if (!org) r.bad_id = "organization id \"" + std::string(parts[2]) + "\" is not a positive integer";
    r.org = org.value_or(0);
    return r;
  }
  if (parts.size() < 4 || parts[0] != "v1" || parts[1] != "orgs" || parts[3] != "generations") return r;
  auto org = ParseId(parts[2]);
  if (parts.size() == 4) {
    r.kind = Route::Kind::kStart;
  } else if (parts.size() == 5 || parts.size() == 6) {
    if (parts.size() == 5) r.kind = Route::Kind::kGeneration;
    if (parts.size() == 6 && parts[5] == "chunks") r.kind = Route::Kind::kChunks;
    if (parts.size() == 6 && parts[5] == "finish") r.kind = Route::Kind::kFinish;
    if (parts.size() == 6 && parts[5] == "progress") r.kind = Route::Kind::kProgress;
    if (parts.size() == 6 && parts[5] == "stream") r.kind = Route::Kind::kStream;
    if (r.kind == Route::Kind::kUnknown) return r;
    auto gen = ParseId(parts[4]);
    if (!gen) r.bad_id = "generation id \"" + std::string(parts[4]) + "\" is not a positive integer";
    r.gen = gen.value_or(0);
  } else {
    return r;
  }
  if (!org) r.bad_id = "organization id \"" + std::string(parts[2]) + "\" is not a positive integer";
  r.org = org.value_or(0);
  return r;
}

StatusOr<ChunkInput> ParseChunkJson(std::string_view text) {
  if (auto c = ParseCommonChunkJson(text)) return std::move(*c);
  return ParseChunkJsonGeneral(text);
}

StatusOr<ChunkInput> ParseChunkJsonGeneral(std::string_view text) {
  auto parsed = ParseJsonInput(text);
  if (!parsed.ok()) return parsed.status();
  const nlohmann::json& j = *parsed;
  if (!j.is_object()) return Status::InvalidArgument("expected a JSON object");
  ChunkInput c;
  auto data = j.find("data");
  if (data == j.end() || !data->is_string()) return Status::InvalidArgument("\"data\" must be a string");
  c.data = data->get<std::string>();
  if (auto s = j.find("seq"); s != j.end() && !s->is_null()) {
    if (!s->is_number_integer() || s->get<int64_t>() < 0) {
      return Status::InvalidArgument("\"seq\" must be a non-negative integer");
    }
    c.seq = s->get<int64_t>();
  }
  if (auto f = j.find("final"); f != j.end() && !f->is_null()) {
    if (!f->is_boolean()) return Status::InvalidArgument("\"final\" must be a boolean");
    c.final = f->get<bool>();
  }
  if (auto t = j.find("total_chunks"); t != j.end() && !t->is_null()) {
    if (!t->is_number_integer() || t->get<int64_t>() <= 0) {
      return Status::InvalidArgument("\"total_chunks\" must be a positive integer or null");
    }
    c.total_chunks = t->get<int64_t>();
  }
  return c;
}

size_t ForEachCompleteLine(std::string_view buffer, const std::function<bool(std::string_view)>& on_line) {
  size_t start = 0;
  for (size_t nl; (nl = buffer.find('\n', start)) != std::string_view::npos; start = nl + 1) {
    if (!on_line(buffer.substr(start, nl - start))) return std::string_view::npos;
  }
  return start;
}

}  // namespace streamfleet
