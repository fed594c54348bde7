#include "streamfleet/live/signed_link.h"

#include <charconv>

#include "streamfleet/base/codec.h"

namespace streamfleet::live {

namespace {

std::string Message(std::string_view path, std::string_view exp) {
  std::string m = "GET\n";
  m.append(path).append("\n").append(exp);
  return m;
}

}  // namespace

std::string SignLink(std::string_view token, std::string_view path, int64_t exp_unix_s) {
  return HmacSha256Hex(token, Message(path, std::to_string(exp_unix_s)));
}

LinkCheck CheckLink(std::string_view token, std::string_view path, std::string_view exp, std::string_view sig,
                    int64_t now_unix_s) {
  int64_t e = 0;
  auto [p, ec] = std::from_chars(exp.data(), exp.data() + exp.size(), e);
  if (exp.empty() || exp.size() > 12 || ec != std::errc() || p != exp.data() + exp.size() || e <= 0 ||
      sig.size() != 64) {
    return LinkCheck::kMalformed;
  }
  // The signature first: an expiry in a forged link says nothing.
  if (!SecretEquals(HmacSha256Hex(token, Message(path, exp)), sig)) return LinkCheck::kBadSignature;
  if (e < now_unix_s) return LinkCheck::kExpired;
  return LinkCheck::kOk;
}

const char* LinkCheckText(LinkCheck c) {
  switch (c) {
    case LinkCheck::kOk: return "ok";
    case LinkCheck::kMalformed: return "exp must be a unix time in seconds and sig 64 hex digits";
    case LinkCheck::kExpired: return "this signed link has expired";
    case LinkCheck::kBadSignature: return "the signature does not match this path and expiry";
  }
  return "";
}

}  // namespace streamfleet::live
