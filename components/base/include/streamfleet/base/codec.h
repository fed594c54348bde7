#pragma once
// Byte codecs over OpenSSL: Base64 (RFC 4648, standard alphabet, padded; EVP_EncodeBlock/EVP_DecodeBlock),
// SHA-256, HMAC-SHA256 and a constant-time secret comparison.
#include <optional>
#include <string>
#include <string_view>

namespace streamfleet {

std::string Base64Encode(std::string_view bytes);
// nullopt when the input is not valid padded base64.
std::optional<std::string> Base64Decode(std::string_view text);

// SHA-256 of the bytes, as 64 lowercase hex digits (cache keys, file checksums, chunk digests).
std::string Sha256Hex(std::string_view bytes);

// HMAC-SHA256 of message under key, as 64 lowercase hex digits (push-handler signatures, signed stream links).
std::string HmacSha256Hex(std::string_view key, std::string_view message);

// Compares two secrets (bearer tokens, CSRF values) in time that depends on neither their contents nor their
// lengths: both are hashed to SHA-256 first and the digests compared with CRYPTO_memcmp. A plain compare
// returns early on the first difference, and a length check before it leaks the token's length.
bool SecretEquals(std::string_view a, std::string_view b);

}  // namespace streamfleet
