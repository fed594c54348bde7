#pragma once
// Test support: a fake OpenAI-compatible chat-completions server on loopback, speaking just enough HTTP/1.1
// for libcurl (one thread per connection, "Connection: close", body ends when the socket closes). Each
// request is answered according to the mode, so a test scripts what a provider does to the worker.
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace streamfleet::testing {

class FakeProvider {
 public:
  enum class Mode {
    kNormal,            // every delta, a usage event, [DONE]
    kSlow,              // the same with a pause between events
    kTooManyRequestsOnce,  // 429 to the first request, then normal
    kAlwaysUnavailable,    // 503 to every request
    kCut,               // half the deltas, then close without [DONE]
    kCutOnce,           // kCut for the first request, then normal (for retry-from-scratch)
    kMalformed,         // a broken "data:" event between the deltas, otherwise normal
    kSilence,           // half the deltas, then nothing while the connection stays open
  };

  FakeProvider();
  ~FakeProvider();
  FakeProvider(const FakeProvider&) = delete;
  FakeProvider& operator=(const FakeProvider&) = delete;

  void set_mode(Mode m) { mode_ = m; }
  void set_deltas(std::vector<std::string> d);
  void set_pause_ms(int ms) { pause_ms_ = ms; }
  // The deltas of a first (cut) answer in kCutOnce, so tests can tell the attempts apart.
  void set_first_deltas(std::vector<std::string> d);
  // Called on the serving thread after a cut answer's last delta, before it closes the connection: a test
  // holds the cut until it has seen what was streamed (set before the request; not changed during one).
  void set_before_cut(std::function<void()> f) { before_cut_ = std::move(f); }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  int requests() const { return requests_.load(); }
  std::string last_request() const;  // request line, headers and body of the last request

 private:
  void AcceptLoop();
  void Serve(int fd, int n);

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<Mode> mode_{Mode::kNormal};
  std::atomic<int> pause_ms_{200};
  std::function<void()> before_cut_;
  std::atomic<int> requests_{0};
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<std::string> deltas_{"Hel", "lo", ", wor", "ld"};
  std::vector<std::string> first_deltas_{"OLD-", "ATTEMPT-", "TEXT-", "X"};
  std::string last_request_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace streamfleet::testing
