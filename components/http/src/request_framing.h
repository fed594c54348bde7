// The raw bytes of a request checked for framing that http_parser (Debian's 2.9, not built strict) accepts
// but other HTTP parsers frame differently. Behind a proxy that reads such bytes another way, one client's
// request could be read as two (the second inside what the proxy took for a body), and the answers on a
// shared upstream connection would go to the wrong clients (request smuggling).
//
// Refused in the head: a header line starting with a space or tab (obs-fold) and a CR not followed by LF.
// Refused in a chunked body: a chunk-size line that is not hex digits, optional extensions and CRLF (a bare
// LF ends no line; no control bytes in an extension), chunk data not followed by exactly CRLF, a trailer line
// not ending in CRLF. The connection feeds every byte of a request here before the parser sees it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace streamfleet {

class RequestFramingScanner {
 public:
  void Rearm() { *this = {}; }  // the next byte starts a new request
  // False on a framing problem (see reason()). Bytes after the request's end are ignored until Rearm.
  bool Scan(const char* data, size_t n);
  const char* reason() const { return reason_; }

  // Longest chunk-size line's extensions accepted: they carry nothing this server reads.
  static constexpr size_t kMaxChunkExtensionBytes = 4096;

 private:
  enum class State {
    kHead,
    kIgnore,  // no chunked body, or the request ended: nothing more to check until Rearm
    kSize,
    kExtension,
    kSizeLf,
    kData,
    kDataCr,
    kDataLf,
    kTrailerLineStart,
    kTrailer,
    kTrailerLf,
    kEndLf,
  };
  bool ScanHeadByte(char b);
  bool Fail(const char* why) {
    reason_ = why;
    return false;
  }

  State state_ = State::kHead;
  // The head.
  bool line_start_ = true;
  bool after_cr_ = false;  // the last byte scanned was a CR: the next must be LF
  int lines_ = 0;          // lines of the head ended so far (the request line is the first)
  // The first bytes of the current header line, lower-cased, to tell a Transfer-Encoding header (the head's
  // checks leave it "chunked" or refuse the request).
  char name_[18] = {};
  size_t name_len_ = 0;
  bool chunked_ = false;
  // A chunked body.
  uint64_t remaining_ = 0;  // chunk data bytes still to come
  int size_digits_ = 0;
  size_t extension_bytes_ = 0;
  const char* reason_ = "";
};

}  // namespace streamfleet
