#include "streamfleet/chunks/chunk_wire_format.h"

#include <cstdint>

namespace streamfleet {

namespace {

// The protobuf wire format, as far as these readers need it: a cursor over bytes that never reads past them.
struct WireReader {
  const unsigned char* p;
  const unsigned char* end;

  explicit WireReader(std::string_view s)
      : p(reinterpret_cast<const unsigned char*>(s.data())), end(p + s.size()) {}

  // max_bytes: 10 for a value, 5 for a tag (protobuf refuses longer tags, and this reader accepts only what
  // protobuf accepts).
  bool Varint(uint64_t* v, int max_bytes = 10) {
    *v = 0;
    for (int shift = 0; p < end && shift < 7 * max_bytes; shift += 7) {
      unsigned char b = *p++;
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }

  // A length-delimited field's size as protobuf's parser reads it (ReadSize): at most 5 bytes, the fifth
  // below 8, at most INT_MAX - 16. It refuses a longer encoding even of a small size (0x80 x5, 0x00 for 0),
  // so this reader does too (found by fuzz_chunk_batch).
  bool Size(uint64_t* n) {
    const unsigned char* start = p;
    if (!Varint(n, 5)) return false;
    if (p - start == 5 && start[4] >= 8) return false;
    return *n <= static_cast<uint64_t>(INT32_MAX - 16);
  }

  // The next field: its number and wire type, and either its varint value (type 0) or its bytes (type 2);
  // the fixed-size types are skipped.
  bool Next(uint32_t* field, uint32_t* type, uint64_t* value, std::string_view* bytes) {
    uint64_t tag = 0;
    if (!Varint(&tag, 5)) return false;
    if ((tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) return false;  // no field 0, none past protobuf's last
    *field = static_cast<uint32_t>(tag >> 3);
    *type = static_cast<uint32_t>(tag & 7);
    *bytes = {};
    *value = 0;
    switch (tag & 7) {
      case 0:
        return Varint(value);
      case 2: {
        uint64_t n = 0;
        if (!Size(&n) || n > static_cast<uint64_t>(end - p)) return false;
        *bytes = std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
        p += n;
        return true;
      }
      case 1:
        if (end - p < 8) return false;
        p += 8;
        return true;
      case 5:
        if (end - p < 4) return false;
        p += 4;
        return true;
      default:
        return false;
    }
  }
};

// Calls on_field(number, wire type, varint value, bytes) for each field of a message; false when the bytes
// do not scan (the fields before were seen).
template <typename F>
bool ForEachField(std::string_view raw, F&& on_field) {
  WireReader r(raw);
  while (r.p < r.end) {
    uint32_t field = 0, type = 0;
    uint64_t value = 0;
    std::string_view bytes;
    if (!r.Next(&field, &type, &value, &bytes)) return false;
    on_field(field, type, value, bytes);
  }
  return true;
}

}  // namespace

bool ScanChunkBatch(std::string_view raw, std::vector<std::string_view>* envelopes, int64_t* first_seq,
                    uint32_t* attempt) {
  *first_seq = 0;
  if (attempt != nullptr) *attempt = 0;
  // Fields of another wire type than their declared one are unknown fields to protobuf: skipped likewise.
  return ForEachField(raw, [&](uint32_t field, uint32_t type, uint64_t value, std::string_view bytes) {
    if (field == 1 && type == 2) envelopes->push_back(bytes);
    if (field == 2 && type == 0) *first_seq = static_cast<int64_t>(value);  // appended last by the script: it wins
    // uint32: protobuf keeps the low 32 bits of a longer varint.
    if (field == 3 && type == 0 && attempt != nullptr) *attempt = static_cast<uint32_t>(value);
  });
}

bool PeekEnvelopeGeneration(std::string_view raw, int64_t* org, int64_t* gen) {
  *org = *gen = 0;
  return ForEachField(raw, [&](uint32_t field, uint32_t type, uint64_t value, std::string_view) {
    if (field == 2 && type == 0) *org = static_cast<int64_t>(value);
    if (field == 4 && type == 0) *gen = static_cast<int64_t>(value);
  });
}

size_t ChunkEnvelopeCount(std::string_view field, std::string_view value) {
  if (field == "e") return 1;
  if (field != "b") return 0;
  size_t n = 0;
  ForEachField(value, [&](uint32_t f, uint32_t type, uint64_t, std::string_view) { n += f == 1 && type == 2 ? 1 : 0; });
  return n;
}

}  // namespace streamfleet
