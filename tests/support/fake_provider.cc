#include "support/fake_provider.h"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "support/loopback.h"

namespace streamfleet::testing {

namespace {

// MSG_NOSIGNAL: the client under test hangs up mid-stream on purpose (silence and cut tests); a write(2) to
// it then raises SIGPIPE, which gtest does not ignore.
void Send(int fd, const std::string& s) { (void)!send(fd, s.data(), s.size(), MSG_NOSIGNAL); }

std::string Event(const nlohmann::json& j) { return "data: " + j.dump() + "\n\n"; }

std::string DeltaEvent(const std::string& text) {
  return Event({{"id", "chatcmpl-1"},
                {"object", "chat.completion.chunk"},
                {"choices", {{{"index", 0}, {"delta", {{"content", text}}}, {"finish_reason", nullptr}}}}});
}

// Reads the request head and its Content-Length body.
std::string ReadRequest(int fd) {
  std::string req;
  char buf[4096];
  size_t need = std::string::npos;
  while (need == std::string::npos || req.size() < need) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    req.append(buf, static_cast<size_t>(n));
    size_t head = req.find("\r\n\r\n");
    if (need == std::string::npos && head != std::string::npos) {
      size_t cl = req.find("Content-Length: ");
      size_t len = cl == std::string::npos ? 0 : std::stoul(req.substr(cl + 16));
      need = head + 4 + len;
    }
  }
  return req;
}

}  // namespace

FakeProvider::FakeProvider() {
  listen_fd_ = ListenOnLoopback(&port_);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

FakeProvider::~FakeProvider() {
  stop_ = true;
  shutdown(listen_fd_, SHUT_RDWR);
  close(listen_fd_);
  acceptor_.join();
  for (auto& t : threads_) t.join();
}

void FakeProvider::set_deltas(std::vector<std::string> d) {
  std::lock_guard<std::mutex> l(mu_);
  deltas_ = std::move(d);
}

void FakeProvider::set_first_deltas(std::vector<std::string> d) {
  std::lock_guard<std::mutex> l(mu_);
  first_deltas_ = std::move(d);
}

std::string FakeProvider::last_request() const {
  std::lock_guard<std::mutex> l(mu_);
  return last_request_;
}

void FakeProvider::AcceptLoop() {
  while (!stop_) {
    int fd = AcceptWithTimeout(listen_fd_);
    if (fd < 0) continue;
    int n = ++requests_;
    threads_.emplace_back([this, fd, n] { Serve(fd, n); });
  }
}

void FakeProvider::Serve(int fd, int n) {
  std::string req = ReadRequest(fd);
  std::vector<std::string> deltas;
  {
    std::lock_guard<std::mutex> l(mu_);
    last_request_ = req;
    deltas = deltas_;
    if (mode_ == Mode::kCutOnce && n == 1) deltas = first_deltas_;
  }
  Mode mode = mode_;
  if ((mode == Mode::kTooManyRequestsOnce && n == 1) || mode == Mode::kAlwaysUnavailable) {
    std::string body = R"({"error": {"message": "slow down"}})";
    Send(fd, std::string(mode == Mode::kAlwaysUnavailable ? "HTTP/1.1 503 Service Unavailable"
                                                          : "HTTP/1.1 429 Too Many Requests") +
                 "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                 "\r\nConnection: close\r\n\r\n" + body);
    close(fd);
    return;
  }
  Send(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n");
  Send(fd, Event({{"choices", {{{"index", 0}, {"delta", {{"role", "assistant"}}}}}}}));
  bool cut = mode == Mode::kCut || (mode == Mode::kCutOnce && n == 1);
  bool partial = cut || mode == Mode::kSilence;
  size_t count = partial ? deltas.size() / 2 : deltas.size();
  for (size_t i = 0; i < count; ++i) {
    if (mode == Mode::kSlow && i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms_.load()));
    if (mode == Mode::kMalformed && i == 1) Send(fd, "data: {\"choices\": [{\"delta\": \n\n");
    Send(fd, DeltaEvent(deltas[i]));
  }
  if (cut && before_cut_) before_cut_();
  if (mode == Mode::kSilence) {
    while (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // connection stays open
  } else if (!cut) {
    Send(fd, Event({{"choices", nlohmann::json::array()},
                    {"usage", {{"prompt_tokens", 7}, {"completion_tokens", deltas.size()}, {"total_tokens", 7 + deltas.size()}}}}));
    Send(fd, "data: [DONE]\n\n");
  }
  shutdown(fd, SHUT_RDWR);
  close(fd);
}

}  // namespace streamfleet::testing
