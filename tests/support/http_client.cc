#include "support/http_client.h"

#include <curl/curl.h>

#include <cstring>
#include <mutex>

namespace streamfleet::testing {

namespace {

size_t Collect(char* p, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

struct StreamState {
  const HttpRequest* req = nullptr;
  std::string piece;
  size_t off = 0;
  bool done = false;
};

size_t Feed(char* buf, size_t size, size_t n, void* data) {
  auto* st = static_cast<StreamState*>(data);
  while (st->off >= st->piece.size()) {
    if (st->done) return 0;
    st->piece.clear();
    st->off = 0;
    if (!st->req->stream(&st->piece)) st->done = true;
  }
  size_t k = std::min(size * n, st->piece.size() - st->off);
  memcpy(buf, st->piece.data() + st->off, k);
  st->off += k;
  return k;
}

}  // namespace

HttpResponse Send(const HttpRequest& req) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  HttpResponse out;
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, Collect);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &out.headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_slist* hs = nullptr;
  for (const auto& h : req.headers) hs = curl_slist_append(hs, h.c_str());
  hs = curl_slist_append(hs, "Expect:");
  StreamState st;
  st.req = &req;
  if (req.stream) {
    hs = curl_slist_append(hs, "Transfer-Encoding: chunked");
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, Feed);
    curl_easy_setopt(c, CURLOPT_READDATA, &st);
  } else if (req.method != "GET") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.body.size()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) out.error = curl_easy_strerror(rc);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.status);
  curl_slist_free_all(hs);
  curl_easy_cleanup(c);
  return out;
}

}  // namespace streamfleet::testing
