#pragma once
// Text hygiene at the edges: UTF-8 validation (ingest rejects non-UTF-8 JSON text with the byte offset; the
// compactor stores any bytes but must not put invalid UTF-8 into a JSON document it writes) and URL redaction
// (a URL from the configuration may carry a password or a token; logs, errors and task payload errors get
// the redacted form only), and URL decoding (the HTTP servers' paths, query strings and form bodies).
#include <optional>
#include <string>
#include <string_view>

namespace streamfleet {

// Offset of the first byte that does not belong to a well-formed UTF-8 sequence (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF), or nullopt when all of `text` is valid UTF-8.
std::optional<size_t> FirstInvalidUtf8(std::string_view text);

// `text` with every invalid byte replaced by U+FFFD: safe to put into a JSON document or a log line.
std::string ToValidUtf8(std::string_view text);

// At most `max_bytes` of the start of `text` (plus "..." when it was cut), fit for an error message or a
// log line whatever the text was: valid UTF-8 (as ToValidUtf8), every control character (C0, DEL, C1)
// replaced by a space, never cut inside a character. For text from outside, e.g. an HTTP answer's body.
std::string TextExcerpt(std::string_view text, size_t max_bytes);

// "scheme://user:secret@host:port/path?query" -> "scheme://user:***@host:port/path?***". A password in the
// userinfo and the whole query string (tokens often ride there) are masked; scheme, user, host, port and
// path stay, so the operator still sees where the process tried to connect. Text without "://" is
// returned unchanged.
std::string RedactUrl(std::string_view url);

// Decodes %XX escapes; a malformed escape is kept as it is. plus_is_space: '+' means a space, as in
// application/x-www-form-urlencoded (query strings, form bodies); in a path '+' stays '+'.
std::string UrlDecode(std::string_view s, bool plus_is_space);

// Percent-encodes (upper-case hex) every byte but RFC 3986's unreserved characters and '/': a path, each
// segment encoded (the form S3's SigV4 canonicalizes), or a path carried in a query value (a login page's
// `next`), where '?', '&', '#' and '%' must not keep their meaning.
std::string UrlEncodePath(std::string_view s);

}  // namespace streamfleet
