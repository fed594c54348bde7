// The raw bytes of HTTP requests through RequestFramingScanner (components/http/src/request_framing.h), which
// the connection feeds as they arrive, in reads of whatever size. The verdict must not depend on where the
// reads are cut: the first input byte picks a cut, and the bytes scanned whole and in two reads must agree.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "components/http/src/request_framing.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t cut = data[0] % size;
  const char* bytes = reinterpret_cast<const char*>(data + 1);
  const size_t n = size - 1;
  streamfleet::RequestFramingScanner whole, split;
  const bool whole_ok = whole.Scan(bytes, n);
  bool split_ok = split.Scan(bytes, cut > n ? n : cut);
  if (split_ok) split_ok = split.Scan(bytes + (cut > n ? n : cut), n - (cut > n ? n : cut));
  FUZZ_CHECK(whole_ok == split_ok);
  if (!whole_ok) FUZZ_CHECK(std::strcmp(whole.reason(), split.reason()) == 0);
  return 0;
}
