#include "streamfleet/base/json_input.h"

#include <string>
#include <unordered_set>
#include <vector>

#include "streamfleet/base/text.h"

namespace streamfleet {

namespace {

using json = nlohmann::json;

// The refusals both handlers below give, in the same words.
std::string ParseErrorText(std::size_t position, const nlohmann::detail::exception& ex) {
  // nlohmann quotes the bytes it stopped at, which may cut a UTF-8 character: the message goes into JSON
  // error bodies and metadata, so it must be valid UTF-8 itself. Its message already carries line/column;
  // the byte offset is kept too for NDJSON callers.
  return ToValidUtf8(ex.what()) + " (byte " + std::to_string(position > 0 ? position - 1 : 0) + ")";
}
// The key's first 64 bytes may end inside a UTF-8 character: the text goes into JSON error bodies, whose dump()
// throws on invalid UTF-8 (an NDJSON line's duplicate key was a 500 without accepted/last_seq).
std::string DuplicateKeyText(const std::string& key) {
  return "duplicate key \"" + ToValidUtf8(key.substr(0, 64)) + "\" in an object";
}
std::string TooDeepText(int max_depth) { return "JSON nested deeper than " + std::to_string(max_depth) + " levels"; }

// A SAX handler that builds the DOM iteratively with an explicit stack of open containers, so neither the
// parse nor the build recurses on input-controlled depth.
class BoundedBuilder {
 public:
  explicit BoundedBuilder(const JsonLimits& limits) : limits_(limits) {}

  bool null() { return Put(json(nullptr)); }
  bool boolean(bool v) { return Put(json(v)); }
  bool number_integer(json::number_integer_t v) { return Put(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return Put(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t&) { return Put(json(v)); }
  bool string(json::string_t& v) { return Put(json(std::move(v))); }
  bool binary(json::binary_t& v) { return Put(json::binary(std::move(v))); }

  bool start_object(std::size_t) { return Open(json::object()); }
  bool start_array(std::size_t) { return Open(json::array()); }
  bool end_object() { return Close(); }
  bool end_array() { return Close(); }

  bool key(json::string_t& k) {
    json* obj = open_.back();
    if (limits_.reject_duplicate_keys && obj->contains(k)) {
      error_ = DuplicateKeyText(k);
      return false;
    }
    slot_ = &(*obj)[std::move(k)];
    return true;
  }

  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) {
    error_ = ParseErrorText(position, ex);
    return false;
  }

  json Take() { return std::move(root_); }
  const std::string& error() const { return error_; }

 private:
  // Places a finished value where the parser is: the root, the next array element, or the last key's slot.
  json* Place(json&& v) {
    if (open_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    json* parent = open_.back();
    if (parent->is_array()) {
      parent->push_back(std::move(v));
      return &parent->back();
    }
    *slot_ = std::move(v);
    return slot_;
  }
  bool Put(json&& v) {
    Place(std::move(v));
    return true;
  }
  bool Open(json&& container) {
    if (static_cast<int>(open_.size()) >= limits_.max_depth) {
      error_ = TooDeepText(limits_.max_depth);
      return false;
    }
    open_.push_back(Place(std::move(container)));
    return true;
  }
  bool Close() {
    open_.pop_back();
    return true;
  }

  const JsonLimits& limits_;
  json root_;
  std::vector<json*> open_;  // containers still open, innermost last (pointers stay valid: see Place)
  json* slot_ = nullptr;
  std::string error_;
};

// The same events checked, nothing built: depth, duplicate keys (the keys of each open object, only when
// they are refused) and U+0000 in strings and keys.
class Checker {
 public:
  Checker(const JsonLimits& limits, JsonFacts& facts) : limits_(limits), facts_(facts) {}

  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const json::string_t&) { return true; }
  bool string(json::string_t& v) {
    Note(v);
    return true;
  }
  bool binary(json::binary_t&) { return true; }

  bool start_object(std::size_t) { return Open(); }
  bool start_array(std::size_t) { return Open(); }
  bool end_object() { return Close(); }
  bool end_array() { return Close(); }

  bool key(json::string_t& k) {
    Note(k);
    if (limits_.reject_duplicate_keys && !open_.back().insert(k).second) {
      error_ = DuplicateKeyText(k);
      return false;
    }
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) {
    error_ = ParseErrorText(position, ex);
    return false;
  }
  const std::string& error() const { return error_; }

 private:
  void Note(const std::string& s) {
    if (!facts_.holds_nul && s.find('\0') != std::string::npos) facts_.holds_nul = true;
  }
  bool Open() {
    if (depth_ >= limits_.max_depth) {
      error_ = TooDeepText(limits_.max_depth);
      return false;
    }
    ++depth_;
    // Arrays too get an (empty) entry, so Close pops what Open pushed; only objects' ever fill.
    if (limits_.reject_duplicate_keys) open_.emplace_back();
    return true;
  }
  bool Close() {
    --depth_;
    if (limits_.reject_duplicate_keys) open_.pop_back();
    return true;
  }

  const JsonLimits& limits_;
  JsonFacts& facts_;
  int depth_ = 0;
  std::vector<std::unordered_set<std::string>> open_;
  std::string error_;
};

// Runs nlohmann's SAX parser over `text` with `handler` (the size limit first): OK, or kInvalidArgument
// with the handler's reason.
template <class Handler>
Status RunSax(std::string_view text, const JsonLimits& limits, Handler& handler) {
  if (limits.max_bytes > 0 && text.size() > limits.max_bytes) {
    return Status::InvalidArgument("JSON document of " + std::to_string(text.size()) + " bytes exceeds " +
                                   std::to_string(limits.max_bytes));
  }
  bool ok = false;
  try {
    ok = json::sax_parse(text.begin(), text.end(), &handler, json::input_format_t::json, /*strict=*/true);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("not valid JSON: ") + e.what());
  }
  if (!ok) return Status::InvalidArgument(handler.error().empty() ? "not valid JSON" : handler.error());
  return Status::Ok();
}

}  // namespace

Status CheckJsonInput(std::string_view text, const JsonLimits& limits, JsonFacts* facts) {
  JsonFacts ignored;
  Checker c(limits, facts != nullptr ? *facts : ignored);
  return RunSax(text, limits, c);
}

StatusOr<json> ParseJsonInput(std::string_view text, const JsonLimits& limits) {
  BoundedBuilder b(limits);
  SF_RETURN_IF_ERROR(RunSax(text, limits, b));
  return b.Take();
}

}  // namespace streamfleet
