#include "streamfleet/chunks/common_chunk_json.h"

#include <cstdint>
#include <string>

#include "streamfleet/base/text.h"

namespace streamfleet {

namespace {

// A cursor over the text. Every method returns false (the caller then answers nullopt) on anything outside
// the common shape, including what is valid JSON but rare in a chunk object.
class Reader {
 public:
  explicit Reader(std::string_view t) : t_(t) {}

  void SkipSpace() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r')) ++i_;
  }
  bool Eat(char c) {
    if (i_ >= t_.size() || t_[i_] != c) return false;
    ++i_;
    return true;
  }
  bool EatWord(std::string_view w) {
    if (t_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  bool AtEnd() const { return i_ == t_.size(); }

  // A key after its opening quote: no escapes, no control characters.
  bool Key(std::string_view* key) {
    size_t j = i_;
    while (j < t_.size() && t_[j] != '"') {
      if (t_[j] == '\\' || static_cast<unsigned char>(t_[j]) < 0x20) return false;
      ++j;
    }
    if (j == t_.size()) return false;
    *key = t_.substr(i_, j - i_);
    i_ = j + 1;
    return true;
  }

  // A string after its opening quote, unescaped into *out.
  bool String(std::string* out) {
    out->clear();
    for (;;) {
      size_t j = i_;
      while (j < t_.size()) {
        const auto c = static_cast<unsigned char>(t_[j]);
        if (c == '"' || c == '\\' || c < 0x20) break;
        ++j;
      }
      // No UTF-8 sequence holds a quote, a backslash or a control byte, so a run between them is checked whole.
      std::string_view run = t_.substr(i_, j - i_);
      if (FirstInvalidUtf8(run)) return false;
      out->append(run);
      if (j == t_.size() || static_cast<unsigned char>(t_[j]) < 0x20) return false;
      if (t_[j] == '"') {
        i_ = j + 1;
        return true;
      }
      i_ = j + 1;  // after the backslash
      if (!Escape(out)) return false;
    }
  }

  // Digits of a non-negative integer, at most 18 (what an int64_t always holds); no leading zero.
  bool Integer(int64_t* v) {
    auto digit = [&](size_t k) { return k < t_.size() && t_[k] >= '0' && t_[k] <= '9'; };
    size_t j = i_;
    int64_t n = 0;
    while (digit(j) && j - i_ < 18) n = n * 10 + (t_[j++] - '0');
    const size_t digits = j - i_;
    if (digits == 0 || digit(j) || (digits > 1 && t_[i_] == '0')) return false;
    *v = n;
    i_ = j;
    return true;
  }

 private:
  bool Hex4(uint32_t* v) {
    if (i_ + 4 > t_.size()) return false;
    uint32_t n = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char c = t_[i_ + k];
      n <<= 4;
      if (c >= '0' && c <= '9') {
        n |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        n |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        n |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    i_ += 4;
    *v = n;
    return true;
  }

  // The escape after a backslash.
  bool Escape(std::string* out) {
    if (i_ >= t_.size()) return false;
    const char e = t_[i_++];
    switch (e) {
      case '"': out->push_back('"'); return true;
      case '\\': out->push_back('\\'); return true;
      case '/': out->push_back('/'); return true;
      case 'b': out->push_back('\b'); return true;
      case 'f': out->push_back('\f'); return true;
      case 'n': out->push_back('\n'); return true;
      case 'r': out->push_back('\r'); return true;
      case 't': out->push_back('\t'); return true;
      case 'u': break;
      default: return false;
    }
    uint32_t cp;
    if (!Hex4(&cp)) return false;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // a low surrogate without its high one
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      uint32_t low;
      if (!EatWord("\\u") || !Hex4(&low) || low < 0xDC00 || low > 0xDFFF) return false;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    AppendUtf8(cp, out);
    return true;
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  std::string_view t_;
  size_t i_ = 0;
};

enum Field { kData = 1, kSeq = 2, kFinal = 4, kTotal = 8 };

}  // namespace

std::optional<ChunkInput> ParseCommonChunkJson(std::string_view text) {
  Reader r(text);
  r.SkipSpace();
  if (!r.Eat('{')) return std::nullopt;
  ChunkInput c;
  unsigned seen = 0;
  for (;;) {
    r.SkipSpace();
    std::string_view key;
    if (!r.Eat('"') || !r.Key(&key)) return std::nullopt;
    r.SkipSpace();
    if (!r.Eat(':')) return std::nullopt;
    r.SkipSpace();
    const unsigned field = key == "data" ? kData : key == "seq" ? kSeq : key == "final" ? kFinal
                           : key == "total_chunks" ? kTotal : 0;
    if (field == 0 || (seen & field)) return std::nullopt;  // other keys, and duplicates: the general parser
    seen |= field;
    int64_t v = 0;
    switch (field) {
      case kData:
        if (!r.Eat('"') || !r.String(&c.data)) return std::nullopt;
        break;
      case kSeq:
        if (r.EatWord("null")) break;
        if (!r.Integer(&v)) return std::nullopt;
        c.seq = v;
        break;
      case kFinal:
        if (r.EatWord("true")) {
          c.final = true;
        } else if (!r.EatWord("false") && !r.EatWord("null")) {
          return std::nullopt;
        }
        break;
      case kTotal:
        if (r.EatWord("null")) break;
        if (!r.Integer(&v) || v == 0) return std::nullopt;
        c.total_chunks = v;
        break;
    }
    r.SkipSpace();
    if (r.Eat(',')) continue;
    if (!r.Eat('}')) return std::nullopt;
    break;
  }
  r.SkipSpace();
  if (!r.AtEnd() || !(seen & kData)) return std::nullopt;
  return c;
}

}  // namespace streamfleet
