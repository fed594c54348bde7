#include "request_framing.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace streamfleet {

namespace {

constexpr char kTransferEncoding[] = "transfer-encoding:";  // 18 bytes, the size of name_

int HexValue(char b) {
  if (b >= '0' && b <= '9') return b - '0';
  if (b >= 'a' && b <= 'f') return b - 'a' + 10;
  if (b >= 'A' && b <= 'F') return b - 'A' + 10;
  return -1;
}

bool IsControl(unsigned char b) { return b < 0x20 || b == 0x7f; }

}  // namespace

bool RequestFramingScanner::ScanHeadByte(char b) {
  if (after_cr_ && b != '\n') return Fail("a bare CR (not followed by LF) in the request head (RFC 9112 section 2.2)");
  after_cr_ = b == '\r';
  if (!line_start_) {
    if (b == '\n') {
      line_start_ = true;
      ++lines_;
    } else if (name_len_ < sizeof name_ && lines_ > 0) {
      name_[name_len_++] = static_cast<char>(std::tolower(static_cast<unsigned char>(b)));
      if (name_len_ == sizeof name_ && std::memcmp(name_, kTransferEncoding, sizeof name_) == 0) chunked_ = true;
    }
    return true;
  }
  if (b == '\r') return true;  // the CR of a CRLF ending a blank line
  if (b == '\n') {
    // A blank line ends the head; before the request line it is skipped (as http_parser does).
    if (lines_ > 0) state_ = chunked_ ? State::kSize : State::kIgnore;
    return true;
  }
  if (lines_ > 0 && (b == ' ' || b == '\t')) {
    return Fail("a header line starts with a space or tab (obs-fold, RFC 9112 section 5.2)");
  }
  line_start_ = false;
  name_len_ = 0;
  if (lines_ > 0) name_[name_len_++] = static_cast<char>(std::tolower(static_cast<unsigned char>(b)));
  return true;
}

bool RequestFramingScanner::Scan(const char* data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const char b = data[i];
    switch (state_) {
      case State::kHead:
        if (!ScanHeadByte(b)) return false;
        break;
      case State::kIgnore:
        return true;
      case State::kSize: {
        const int v = HexValue(b);
        if (v >= 0) {
          if (++size_digits_ > 15) return Fail("a chunk size of more than 15 hex digits");
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
        } else if (size_digits_ == 0) {
          return Fail("a chunk-size line that does not start with a hex digit");
        } else if (b == '\r') {
          state_ = State::kSizeLf;
        } else if (b == ';' || b == ' ' || b == '\t') {
          state_ = State::kExtension;  // BWS before ';' is allowed (RFC 9112 section 7.1.1)
          extension_bytes_ = 1;
        } else {
          return Fail("a chunk-size line with a byte other than hex digits, an extension and CRLF");
        }
        break;
      }
      case State::kExtension:
        if (b == '\r') {
          state_ = State::kSizeLf;
        } else if ((IsControl(static_cast<unsigned char>(b)) && b != '\t') ||
                   ++extension_bytes_ > kMaxChunkExtensionBytes) {
          return Fail("a chunk extension with a control byte (a bare LF ends no line) or over 4096 bytes");
        }
        break;
      case State::kSizeLf:
        if (b != '\n') return Fail("a chunk-size line not ending in CRLF");
        if (remaining_ == 0) {
          state_ = State::kTrailerLineStart;
        } else {
          state_ = State::kData;
        }
        break;
      case State::kData: {
        // Chunk data is opaque: skip it whole.
        const uint64_t take = std::min<uint64_t>(remaining_, n - i);
        remaining_ -= take;
        i += take - 1;
        if (remaining_ == 0) state_ = State::kDataCr;
        break;
      }
      case State::kDataCr:
        if (b != '\r') return Fail("chunk data not followed by CRLF (the chunk size and its data disagree)");
        state_ = State::kDataLf;
        break;
      case State::kDataLf:
        if (b != '\n') return Fail("chunk data not followed by CRLF (the chunk size and its data disagree)");
        state_ = State::kSize;
        size_digits_ = 0;
        break;
      case State::kTrailerLineStart:
        if (b == '\r') {
          state_ = State::kEndLf;
        } else if (b == '\n' || b == ' ' || b == '\t') {
          return Fail("a trailer line that is empty without CR, or starts with a space or tab");
        } else {
          state_ = State::kTrailer;
        }
        break;
      case State::kTrailer:
        if (b == '\r') {
          state_ = State::kTrailerLf;
        } else if (b == '\n') {
          return Fail("a trailer line ending in a bare LF");
        }
        break;
      case State::kTrailerLf:
        if (b != '\n') return Fail("a bare CR in a trailer line");
        state_ = State::kTrailerLineStart;
        break;
      case State::kEndLf:
        if (b != '\n') return Fail("a chunked body not ending in CRLF");
        state_ = State::kIgnore;
        return true;
    }
  }
  return true;
}

}  // namespace streamfleet
