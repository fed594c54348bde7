#pragma once
// Test support: a real HTTP client (libcurl) for exercising the servers.
#include <functional>
#include <string>
#include <vector>

namespace streamfleet::testing {

struct HttpResponse {
  long status = 0;
  std::string body;
  std::string headers;
  std::string error;  // transport error, empty on success
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::string body;
  std::vector<std::string> headers;  // "Name: value"
  // When set, the body is sent with Transfer-Encoding: chunked, one piece per call until it returns false.
  std::function<bool(std::string* piece)> stream;
};

HttpResponse Send(const HttpRequest& req);

}  // namespace streamfleet::testing
