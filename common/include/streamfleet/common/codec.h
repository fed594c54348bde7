#pragma once
// Base64 (RFC 4648, standard alphabet, padded) over OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock.
#include <optional>
#include <string>
#include <string_view>

namespace streamfleet {

std::string Base64Encode(std::string_view bytes);
// nullopt when the input is not valid padded base64.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace streamfleet
