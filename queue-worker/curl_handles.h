#pragma once
// What the worker's libcurl users (webhook.cc, push_handlers.cc, provider_client.cc) share: owning handles
// for curl objects, a once-per-process global init, and the progress callback that aborts a transfer when
// the attempt is cancelled (its timeout passed or its lease was lost).
#include <curl/curl.h>

#include <atomic>
#include <mutex>

namespace streamfleet::worker {

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// curl_global_init, once, before the first handle (it is not thread-safe itself).
inline void InitCurlOnce() {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// CURLOPT_XFERINFOFUNCTION with CURLOPT_XFERINFODATA = the attempt's `const std::atomic<bool>*` (may be null).
inline int AbortIfCancelled(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancelled = static_cast<const std::atomic<bool>*>(user);
  return cancelled != nullptr && cancelled->load() ? 1 : 0;
}

}  // namespace streamfleet::worker
