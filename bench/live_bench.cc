// Live streams benchmark (docs/live.md, docs/performance.md "Method of the live-stream part"): drives a running
// streamfleet-ingest with server-sent-event subscribers and chunk producers, all in this process, so a
// chunk's 202 and its events are timed on one steady clock. Three parts:
//   idle  10 000 concurrent generation streams waiting for generations that do not start: ingest VmRSS
//         before and with them open, and what holding them costs (CPU of ingest and Redis);
//   live  100 generations x 10 subscribers, a producer posting 20 chunks/s to each (2 000 chunks/s in,
//         20 000 events/s out): latency from the producer reading its 202 to a subscriber parsing the
//         event, every subscriber checked for every seq exactly once and in order, then `compacted`;
//   load  the chunk path's throughput (64 keep-alive clients, one JSON chunk per POST, as ingest_bench)
//         alone (first and last: the reference is their mean), beside the live producer without
//         subscribers, beside the whole live part, and beside 1 and 10 000 streams of generations that
//         do not start (what the hub's tail and its readers cost without anything to deliver).
// The compactor (--compactor-bin) runs through the idle and live parts only, see main().
// Subscribers and the producer share one epoll thread (a minimal chunked-HTTP + SSE parser reading `id:`,
// the event name and the data's seq and text); the load clients run on their own epoll threads. Prints
// key=value result lines (bench/run.sh turns them into the table).
//
//   live_bench --port INGEST_PORT --redis-port P --pid INGEST_PID [--compactor-bin PATH --db FILE]
//              [--idle 10000] [--gens 100] [--subs 10] [--rate 20] [--live-seconds 20] [--clients 64]
//              [--duration 10] [--phases idle,live,load]
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>


#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <string_view>
#include <thread>

#include "bench/bench_util.h"
#include "streamfleet/sql/sql_store.h"

using namespace streamfleet;
using namespace streamfleet::bench;

namespace {

struct Options {
  int port = 0;
  int redis_port = 0;
  int pid = 0;
  std::string compactor_bin;
  std::string db;
  std::string phases = "idle,live,load";
  int64_t org = 1;
  // Generation ids of this run: the rows table outlives Redis, and a stream of a generation that has a row
  // but no buffer is answered from the row (event: text) instead of live.
  int64_t gen_base = 0;
  int idle = 10000;
  int idle_per_gen = 1;  // idle streams per generation (1: every stream its own generation, the hub's worst case)
  double idle_hold_s = 5;
  int gens = 100;
  int subs = 10;  // per generation
  double rate = 20;  // chunks/s per generation
  double live_s = 20;
  double settle_s = 0.5;
  int chunk_bytes = 200;
  int clients = 64;
  int client_threads = 2;
  double warmup_s = 1;
  double duration_s = 10;
};

// ---- sockets --------------------------------------------------------------------------------------------

// Blocking connect (loopback answers at once while the accept queue has room: callers keep the number of
// connections not yet answered well below ingest's backlog of 1024), then non-blocking for the epoll loop.
int ConnectTo(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

// Requests are small next to an empty socket buffer, so this almost never waits.
bool SendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t w = write(fd, s.data() + off, s.size() - off);
    if (w > 0) {
      off += static_cast<size_t>(w);
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, 1000);
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

std::string Get(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n";
}

std::string Post(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Chunk text: deterministic per seq and free of JSON escapes, so a subscriber can compare the bytes it got
// with what was posted; nothing in it depends on a clock.
const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
constexpr int kAlphabetSize = sizeof kAlphabet - 1;

struct Texts {
  std::vector<std::string> by_rotation;
  explicit Texts(int bytes) {
    for (int r = 0; r < kAlphabetSize; ++r) {
      std::string s;
      for (int i = 0; i < bytes; ++i) s.push_back(kAlphabet[(i + r) % kAlphabetSize]);
      by_rotation.push_back(std::move(s));
    }
  }
  const std::string& Of(int64_t seq) const { return by_rotation[static_cast<size_t>(seq % kAlphabetSize)]; }
};

int64_t ParseInt(std::string_view s) {
  int64_t v = 0;
  bool any = false;
  for (char ch : s) {
    if (ch < '0' || ch > '9') break;
    v = v * 10 + (ch - '0');
    any = true;
  }
  return any ? v : -1;
}

// ---- the latency book: 202 times per (generation, seq), and event times that came before their 202 --------

struct Book {
  int gens = 0;
  int64_t chunks = 0;
  std::vector<Clk::time_point> acked;  // gens x chunks; epoch = not acknowledged yet
  std::vector<double> lat_ms;
  struct Early {
    uint32_t gi;
    uint32_t seq;
    Clk::time_point at;
  };
  std::vector<Early> early;  // parsed before the producer had read the chunk's 202 (resolved at the end)
  int64_t negative = 0;
  double early_max_ms = 0;  // the most an event preceded its 202
  struct Worst {
    double ms;
    int gi;
    int64_t seq;
    double at_s;  // since production started
  };
  std::vector<Worst> worst;
  Clk::time_point t0;

  void Reset(int g, int64_t n) {
    gens = g;
    chunks = n;
    acked.assign(static_cast<size_t>(g) * static_cast<size_t>(n), Clk::time_point{});
    lat_ms.clear();
    lat_ms.reserve(static_cast<size_t>(g) * static_cast<size_t>(n) * 12);
    early.clear();
    worst.clear();
    negative = 0;
    early_max_ms = 0;
  }
  void Sample(double ms, int gi, int64_t seq, Clk::time_point at) {
    if (ms < 0) {
      // The event was parsed before the producer read its 202 (both replies leave Redis together; the
      // event's path can win): by the definition, from the 202 to the event, that is no wait at all.
      ++negative;
      early_max_ms = std::max(early_max_ms, -ms);
      ms = 0;
    }
    lat_ms.push_back(ms);
    if (worst.size() < 10 || ms > worst.back().ms) {
      worst.push_back({ms, gi, seq, Seconds(at - t0)});
      std::sort(worst.begin(), worst.end(), [](const Worst& a, const Worst& b) { return a.ms > b.ms; });
      if (worst.size() > 10) worst.pop_back();
    }
  }
  void OnEvent(int gi, int64_t seq, Clk::time_point at) {
    if (seq < 0 || seq >= chunks) return;
    Clk::time_point a = acked[static_cast<size_t>(gi) * static_cast<size_t>(chunks) + static_cast<size_t>(seq)];
    if (a == Clk::time_point{}) {
      early.push_back({static_cast<uint32_t>(gi), static_cast<uint32_t>(seq), at});
    } else {
      Sample(Seconds(at - a) * 1000.0, gi, seq, at);
    }
  }
  void Resolve() {
    for (const auto& e : early) {
      Clk::time_point a = acked[static_cast<size_t>(e.gi) * static_cast<size_t>(chunks) + e.seq];
      if (a != Clk::time_point{}) Sample(Seconds(e.at - a) * 1000.0, static_cast<int>(e.gi), e.seq, e.at);
    }
    early.clear();
  }
};

// ---- one epoll loop of subscribers and producers ----------------------------------------------------------

struct Conn {
  enum Kind { kSub, kProducer } kind;
  int fd = -1;
  int gi = 0;  // generation index within the part
  explicit Conn(Kind k) : kind(k) {}
};

// A generation stream (or, events = true, an organization's events stream) read by a chunked-HTTP + SSE
// parser that keeps only what the checks need.
struct Sub : Conn {
  Sub() : Conn(kSub) {}
  bool events = false;
  bool head_done = false;
  int status = 0;
  bool ready = false;   // head and preamble read: the hub has the stream
  bool ended = false;   // the server ended the stream (or the socket closed)
  std::string raw;      // bytes not yet de-chunked
  std::string sse;      // de-chunked bytes not yet parsed
  size_t chunk_left = 0;
  int dstate = 0;       // 0: size line, 1: data, 2: CRLF after the data
  int64_t next_seq = 0;
  int64_t chunk_events = 0;
  int64_t out_of_order = 0;  // a seq that was not the next one (duplicate, gap or reordering)
  int64_t bad_text = 0;
  int64_t progress = 0;
  int64_t keepalives = 0;
  int64_t whole_text = 0;  // event: text (served from the row)
  bool compacted = false;
  int64_t compacted_count = -1;
  std::string closing;  // reason of an event: closing
  int64_t lifecycle_started = 0, lifecycle_compacted = 0;  // events route
};

struct Producer : Conn {
  Producer() : Conn(kProducer) {}
  int64_t gen = 0;
  int64_t next_seq = 0;
  bool inflight = false;
  int64_t owed = 0;  // due while the previous chunk was still in flight: sent when its 202 comes
  std::string in;
};

class LiveLoop {
 public:
  LiveLoop(const Options& o, const Texts& texts) : o_(o), texts_(texts) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    events_.resize(1024);
  }
  ~LiveLoop() {
    CloseAll();
    close(ep_);
  }

  std::vector<std::unique_ptr<Sub>> subs;
  std::vector<std::unique_ptr<Producer>> producers;
  Book book;
  int64_t subs_failed = 0;
  int64_t producer_errors = 0;
  int64_t chunk_events = 0;  // every subscriber's, this part
  Clk::time_point last_event_at;

  // Opens `n` streams (path_of(i)), at most `window` of them not yet answered, until each is ready or failed.
  void OpenSubs(int n, const std::function<std::string(int)>& path_of, const std::function<int(int)>& gi_of,
                bool events, double timeout_s) {
    const int window = 200;
    int next = 0, waiting = 0;
    size_t first = subs.size();
    auto deadline = Clk::now() + std::chrono::duration_cast<Clk::duration>(std::chrono::duration<double>(timeout_s));
    while (Clk::now() < deadline) {
      while (next < n && waiting < window) {
        auto s = std::make_unique<Sub>();
        s->gi = gi_of(next);
        s->events = events;
        s->fd = ConnectTo(o_.port);
        ++next;
        if (s->fd < 0 || !SendAll(s->fd, Get(path_of(next - 1)))) {
          if (subs_failed++ == 0) std::perror("live_bench: opening a stream");
          if (s->fd >= 0) close(s->fd);
          continue;
        }
        Watch(s.get());
        subs.push_back(std::move(s));
        ++waiting;
      }
      Poll(100);
      waiting = 0;
      for (size_t i = first; i < subs.size(); ++i) {
        if (!subs[i]->ready && !subs[i]->ended) ++waiting;
      }
      if (next == n && waiting == 0) break;
    }
    for (size_t i = first; i < subs.size(); ++i) {
      if (!subs[i]->ready) ++subs_failed;
    }
  }

  void OpenProducers(int gens, int64_t gen_base) {
    for (int g = 0; g < gens; ++g) {
      auto p = std::make_unique<Producer>();
      p->gi = g;
      p->gen = gen_base + g;
      p->fd = ConnectTo(o_.port);
      if (p->fd < 0) {
        std::perror("live_bench: producer connect");
        std::exit(1);
      }
      Watch(p.get());
      producers.push_back(std::move(p));
    }
  }

  // One epoll round; returns the number of sockets that had something.
  int Poll(int timeout_ms) {
    int n = epoll_wait(ep_, events_.data(), static_cast<int>(events_.size()), timeout_ms);
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Conn*>(events_[static_cast<size_t>(i)].data.ptr);
      if (c->kind == Conn::kSub) {
        ReadSub(*static_cast<Sub*>(c));
      } else {
        ReadProducer(*static_cast<Producer*>(c));
      }
    }
    return n;
  }

  // Paces `chunks` chunks per producer at rate per generation (staggered evenly over the producers),
  // then waits until done() or the deadline. producing is set once the first chunk went out.
  void Produce(int64_t chunks, double rate_per_gen, std::atomic<bool>* producing, const std::function<bool()>& done,
               double tail_timeout_s, const std::function<void()>& produced) {
    const int gens = static_cast<int>(producers.size());
    const int64_t total = chunks * gens;
    chunks_ = chunks;
    const double interval_s = 1.0 / (rate_per_gen * gens);
    auto t0 = Clk::now();
    book.t0 = t0;
    produce_start_ = t0;
    int64_t k = 0;
    if (producing) producing->store(true);
    while (true) {
      auto now = Clk::now();
      while (k < total && t0 + std::chrono::duration_cast<Clk::duration>(std::chrono::duration<double>(k * interval_s)) <= now) {
        Producer& p = *producers[static_cast<size_t>(k % gens)];
        if (p.inflight) {
          ++p.owed;
        } else {
          SendChunk(p);
        }
        ++k;
      }
      int timeout = 100;
      if (k < total) {
        auto due = t0 + std::chrono::duration_cast<Clk::duration>(std::chrono::duration<double>(k * interval_s));
        // Rounded up: at 2 000 chunks/s the next one is due in under a millisecond, and a zero timeout would
        // spin this thread on a core the servers need; what falls due meanwhile goes out together.
        timeout = static_cast<int>(std::max<int64_t>(
            1, (std::chrono::duration_cast<std::chrono::microseconds>(due - Clk::now()).count() + 999) / 1000));
      }
      Poll(timeout);
      if (k == total && AllSent()) break;
    }
    produce_end_ = Clk::now();
    if (produced) produced();
    auto deadline = Clk::now() + std::chrono::duration_cast<Clk::duration>(std::chrono::duration<double>(tail_timeout_s));
    while (!done() && Clk::now() < deadline) Poll(50);
  }

  bool AllSent() const {
    for (const auto& p : producers) {
      if (p->inflight || p->next_seq < chunks_) return false;
    }
    return true;
  }
  double ProduceSeconds() const { return Seconds(produce_end_ - produce_start_); }
  double DeliverSeconds() const { return Seconds(last_event_at - produce_start_); }

  void CloseAll() {
    for (auto& s : subs) {
      if (s->fd >= 0) close(s->fd);
      s->fd = -1;
    }
    for (auto& p : producers) {
      if (p->fd >= 0) close(p->fd);
      p->fd = -1;
    }
  }

 private:
  void Watch(Conn* c) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    epoll_ctl(ep_, EPOLL_CTL_ADD, c->fd, &ev);
  }
  void Unwatch(Conn* c) { epoll_ctl(ep_, EPOLL_CTL_DEL, c->fd, nullptr); }

  void SendChunk(Producer& p) {
    const int64_t seq = p.next_seq++;
    std::string body = "{\"seq\":" + std::to_string(seq) + ",\"data\":\"" + texts_.Of(seq) +
                       "\",\"final\":" + (seq + 1 == chunks_ ? "true" : "false") + "}";
    p.inflight = true;
    if (!SendAll(p.fd, Post("/v1/orgs/" + std::to_string(o_.org) + "/generations/" + std::to_string(p.gen) + "/chunks", body))) {
      std::perror("live_bench: producer write");
      std::exit(1);
    }
  }

  void ReadProducer(Producer& p) {
    char buf[4096];
    ssize_t n = read(p.fd, buf, sizeof buf);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      std::cerr << "live_bench: a producer connection was closed by ingest\n";
      std::exit(1);
    }
    auto now = Clk::now();
    p.in.append(buf, static_cast<size_t>(n));
    int status = 0;
    if (!TakeResponse(p.in, &status)) return;
    const int64_t seq = p.next_seq - 1;
    if (status == 202) {
      book.acked[static_cast<size_t>(p.gi) * static_cast<size_t>(chunks_) + static_cast<size_t>(seq)] = now;
    } else if (producer_errors++ == 0) {
      std::cerr << "live_bench: chunk " << seq << " of generation " << p.gen << " answered " << status << "\n";
    }
    p.inflight = false;
    if (p.owed > 0 && p.next_seq < chunks_) {
      --p.owed;
      SendChunk(p);
    }
  }

  void ReadSub(Sub& s) {
    char buf[65536];
    ssize_t n = read(s.fd, buf, sizeof buf);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      s.ended = true;
      Unwatch(&s);
      return;
    }
    s.raw.append(buf, static_cast<size_t>(n));
    if (!s.head_done) {
      size_t e = s.raw.find("\r\n\r\n");
      if (e == std::string::npos) return;
      s.status = std::atoi(s.raw.data() + 9);
      s.head_done = true;
      if (s.status != 200) {
        if (subs_failed == 0) std::cerr << "live_bench: stream answered " << s.raw.substr(0, 200) << "\n";
        s.ended = true;
        Unwatch(&s);
        return;
      }
      s.raw.erase(0, e + 4);
    }
    size_t p = 0;
    while (true) {
      if (s.dstate == 0) {
        size_t eol = s.raw.find("\r\n", p);
        if (eol == std::string::npos) break;
        size_t size = std::strtoul(s.raw.c_str() + p, nullptr, 16);
        p = eol + 2;
        if (size == 0) {
          s.ended = true;  // the last chunk: the server ended the stream
          break;
        }
        s.chunk_left = size;
        s.dstate = 1;
      }
      if (s.dstate == 1) {
        size_t take = std::min(s.chunk_left, s.raw.size() - p);
        s.sse.append(s.raw, p, take);
        p += take;
        s.chunk_left -= take;
        if (s.chunk_left > 0) break;
        s.dstate = 2;
      }
      if (s.dstate == 2) {
        if (s.raw.size() - p < 2) break;
        p += 2;
        s.dstate = 0;
      }
    }
    s.raw.erase(0, p);
    size_t q = 0;
    for (size_t end; (end = s.sse.find("\n\n", q)) != std::string::npos; q = end + 2) {
      OnEvent(s, std::string_view(s.sse).substr(q, end - q));
    }
    s.sse.erase(0, q);
  }

  void OnEvent(Sub& s, std::string_view block) {
    std::string_view id, event, data;
    bool comment = false, retry = false;
    while (!block.empty()) {
      size_t eol = block.find('\n');
      std::string_view line = block.substr(0, eol);
      block = eol == std::string_view::npos ? std::string_view() : block.substr(eol + 1);
      if (line.rfind("id: ", 0) == 0) {
        id = line.substr(4);
      } else if (line.rfind("event: ", 0) == 0) {
        event = line.substr(7);
      } else if (line.rfind("data: ", 0) == 0) {
        data = line.substr(6);
      } else if (line.rfind("retry:", 0) == 0) {
        retry = true;
      } else if (!line.empty() && line[0] == ':') {
        comment = true;
      }
    }
    if (retry && event.empty()) {
      s.ready = true;  // the preamble: the stream is the hub's now
      return;
    }
    if (comment && event.empty()) {
      ++s.keepalives;
      return;
    }
    if (event == "chunk") {
      auto now = Clk::now();
      last_event_at = now;
      ++chunk_events;
      ++s.chunk_events;
      int64_t seq = ParseInt(id);
      size_t at = data.find("\"seq\":");
      int64_t data_seq = at == std::string_view::npos ? -2 : ParseInt(data.substr(at + 6));
      if (seq != data_seq) ++s.out_of_order;
      if (seq != s.next_seq) ++s.out_of_order;
      if (seq >= s.next_seq) s.next_seq = seq + 1;
      size_t t = data.find("\"text\":\"");
      if (seq < 0 || t == std::string_view::npos || data.substr(t + 8, texts_.Of(seq).size()) != texts_.Of(seq) ||
          data.substr(t + 8 + texts_.Of(seq).size(), 1) != "\"") {
        ++s.bad_text;
      }
      book.OnEvent(s.gi, seq, now);
    } else if (event == "text") {
      ++s.whole_text;
    } else if (event == "progress") {
      ++s.progress;
    } else if (event == "compacted") {
      s.compacted = id == "end";
      size_t at = data.find("\"chunk_count\":");
      if (at != std::string_view::npos) s.compacted_count = ParseInt(data.substr(at + 14));
    } else if (event == "closing") {
      s.closing = std::string(data.substr(0, 200));
    } else if (event == "generation.started") {
      ++s.lifecycle_started;
    } else if (event == "generation.compacted") {
      ++s.lifecycle_compacted;
    }
  }

  const Options& o_;
  const Texts& texts_;
  int ep_ = -1;
  std::vector<epoll_event> events_;
  int64_t chunks_ = 0;
  Clk::time_point produce_start_, produce_end_;
};

std::string StreamPath(int64_t org, int64_t gen) {
  return "/v1/orgs/" + std::to_string(org) + "/generations/" + std::to_string(gen) + "/stream";
}

// One command's calls and microseconds from INFO commandstats ("cmdstat_xread:calls=..,usec=..").
std::pair<double, double> CommandStat(RedisClient& r, const std::string& command) {
  auto info = r.Command({"INFO", "commandstats"});
  if (!info.ok()) return {0, 0};
  std::string key = "cmdstat_" + command + ":calls=";
  size_t at = info->str.find(key);
  if (at == std::string::npos) return {0, 0};
  double calls = std::atof(info->str.c_str() + at + key.size());
  size_t u = info->str.find("usec=", at);
  return {calls, u == std::string::npos ? 0 : std::atof(info->str.c_str() + u + 5)};
}

struct Cpu {
  Cpu(int ingest_pid, int compactor_pid, RedisClient* r) : pid(ingest_pid), compactor(compactor_pid), redis(r) {}
  int pid = 0;
  int compactor = 0;
  RedisClient* redis = nullptr;
  double ingest0 = 0, redis0 = 0, self0 = 0, comp0 = 0, out0 = 0;
  std::pair<double, double> xread0;
  Clk::time_point t0;
  void Start() {
    t0 = Clk::now();
    ingest0 = ProcCpuSeconds(pid);
    redis0 = RedisCpuSeconds(*redis);
    self0 = ProcCpuSeconds(getpid());
    comp0 = compactor > 0 ? ProcCpuSeconds(compactor) : 0;
    // What the hub's tail costs Redis: its XREADs (nothing else here reads with XREAD) and the bytes sent.
    xread0 = CommandStat(*redis, "xread");
    out0 = RedisInfoField(*redis, "stats", "total_net_output_bytes");
  }
  // Cores busy since Start: ingest, redis, this driver, the compactor.
  void Emit(const std::string& prefix) {
    double s = Seconds(Clk::now() - t0);
    bench::Emit(prefix + "_ingest_cpu_cores", (ProcCpuSeconds(pid) - ingest0) / s);
    bench::Emit(prefix + "_redis_cpu_cores", (RedisCpuSeconds(*redis) - redis0) / s);
    bench::Emit(prefix + "_driver_cpu_cores", (ProcCpuSeconds(getpid()) - self0) / s);
    if (compactor > 0) bench::Emit(prefix + "_compactor_cpu_cores", (ProcCpuSeconds(compactor) - comp0) / s);
    auto xread = CommandStat(*redis, "xread");
    bench::Emit(prefix + "_redis_xread_per_s", (xread.first - xread0.first) / s);
    bench::Emit(prefix + "_redis_xread_cpu_cores", (xread.second - xread0.second) / 1e6 / s);
    bench::Emit(prefix + "_redis_out_mb_per_s",
                (RedisInfoField(*redis, "stats", "total_net_output_bytes") - out0) / (1024.0 * 1024.0) / s);
  }
};

double RssMb(int pid) { return static_cast<double>(ProcStatusKb(pid, "VmRSS")) / 1024.0; }

void SleepS(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

// ---- idle ---------------------------------------------------------------------------------------------

void IdlePart(const Options& o, const Texts& texts, RedisClient& redis) {
  const int n = o.idle;
  const int per_gen = std::max(1, o.idle_per_gen);
  const int64_t gen_base = o.gen_base + 1000000;
  Emit("live_idle_target", n);
  Emit("live_idle_gens", (n + per_gen - 1) / per_gen);
  SleepS(1);  // whatever the previous part freed
  Emit("live_idle_rss_before_mb", RssMb(o.pid));
  LiveLoop loop(o, texts);
  auto t0 = Clk::now();
  loop.OpenSubs(
      n, [&](int i) { return StreamPath(o.org, gen_base + i / per_gen); }, [](int) { return 0; }, false,
      60 + n / 200.0);
  double open_s = Seconds(Clk::now() - t0);
  int64_t ready = 0;
  for (const auto& s : loop.subs) ready += s->ready && !s->ended;
  std::cerr << "live_bench: idle: " << ready << " of " << n << " streams open in " << open_s << " s ("
            << loop.subs_failed << " failed)\n";
  Emit("live_idle_open", static_cast<double>(ready));
  Emit("live_idle_open_s", open_s);
  // The hub's first resync of each new generation (control hash, row lookup) is over after a second.
  auto settle = Clk::now() + std::chrono::seconds(2);
  while (Clk::now() < settle) loop.Poll(100);
  Emit("live_idle_rss_mb", RssMb(o.pid));
  Cpu cpu{o.pid, 0, &redis};
  cpu.Start();
  auto hold = Clk::now() + std::chrono::duration_cast<Clk::duration>(std::chrono::duration<double>(o.idle_hold_s));
  while (Clk::now() < hold) loop.Poll(100);
  cpu.Emit("live_idle");
  Emit("live_idle_rss_held_mb", RssMb(o.pid));
  Emit("live_idle_hwm_mb", static_cast<double>(ProcStatusKb(o.pid, "VmHWM")) / 1024.0);
  int64_t still = 0, closed_by_server = 0;
  for (const auto& s : loop.subs) {
    still += s->ready && !s->ended && s->closing.empty();
    if (!s->closing.empty() || (s->ended && s->ready)) {
      if (closed_by_server++ == 0) std::cerr << "live_bench: idle stream ended by the server: " << s->closing << "\n";
    }
  }
  Emit("live_idle_still_open", static_cast<double>(still));
  Emit("live_idle_closed_by_server", static_cast<double>(closed_by_server));
  loop.CloseAll();
  SleepS(2);
  Emit("live_idle_rss_after_close_mb", RssMb(o.pid));
}

// ---- live: subscribers and the paced producer ----------------------------------------------------------

struct LiveResult {
  int64_t subs_ready = 0, subs_complete = 0, subs_compacted = 0, out_of_order = 0, bad_text = 0, missing = 0,
          closed = 0, failed = 0, producer_errors = 0, negative = 0;
  double early_max_ms = 0;
  int64_t incomplete_logged = 0;
  int64_t lifecycle_started = 0, lifecycle_compacted = 0;
  double produce_cps = 0, events_per_s = 0, p50 = 0, p99 = 0, max = 0;
  int64_t samples = 0;
};

// gens generations, subs subscribers each (0: the producer alone), chunks per generation at o.rate.
// cpu, when given, is read over the production (from the first chunk to the last 202) as `label`.
LiveResult RunLive(const Options& o, const Texts& texts, int subs, int64_t chunks, int64_t gen_base,
                   bool expect_compacted, std::atomic<bool>* producing, const std::string& label, Cpu* cpu = nullptr) {
  LiveLoop loop(o, texts);
  const int gens = o.gens;
  loop.OpenSubs(
      gens * subs, [&](int i) { return StreamPath(o.org, gen_base + i % gens); }, [gens](int i) { return i % gens; },
      false, 60);
  if (subs > 0) {
    loop.OpenSubs(
        1, [&](int) { return "/v1/orgs/" + std::to_string(o.org) + "/events"; }, [](int) { return 0; }, true, 10);
  }
  // The hub adds a generation to its tail's watch set only after the stream's preamble went out; a chunk the
  // tail reads before that reaches the stream through the hub's buffer re-read instead (once the compactor
  // has applied it, at most a second later). Subscribers that connect as a generation starts race like that;
  // this part measures the steady state, so it lets the watch set settle first.
  auto settle = Clk::now() + std::chrono::duration_cast<Clk::duration>(std::chrono::duration<double>(o.settle_s));
  while (Clk::now() < settle) loop.Poll(20);
  loop.OpenProducers(gens, gen_base);
  loop.book.Reset(gens, chunks);
  auto done = [&] {
    for (const auto& s : loop.subs) {
      if (s->events || s->ended) continue;
      if (s->next_seq < chunks || (expect_compacted && !s->compacted)) return false;
    }
    return true;
  };
  if (cpu) cpu->Start();
  loop.Produce(chunks, o.rate, producing, done, expect_compacted ? 60 : 15, [&] {
    if (cpu) cpu->Emit(label);
  });
  loop.book.Resolve();
  LiveResult r;
  r.failed = loop.subs_failed;
  r.producer_errors = loop.producer_errors;
  r.produce_cps = static_cast<double>(chunks * gens) / loop.ProduceSeconds();
  for (const auto& s : loop.subs) {
    if (s->events) {
      r.lifecycle_started += s->lifecycle_started;
      r.lifecycle_compacted += s->lifecycle_compacted;
      continue;
    }
    r.subs_ready += s->ready;
    r.out_of_order += s->out_of_order;
    r.bad_text += s->bad_text;
    r.missing += std::max<int64_t>(0, chunks - s->next_seq);
    bool complete = s->ready && s->out_of_order == 0 && s->bad_text == 0 && s->chunk_events == chunks && s->next_seq == chunks;
    r.subs_complete += complete;
    if (!complete && ++r.incomplete_logged <= 5) {
      std::cerr << "live_bench: " << label << ": incomplete subscriber: generation index " << s->gi << ", ready "
                << s->ready << ", ended " << s->ended << ", " << s->chunk_events << " chunk events, next seq "
                << s->next_seq << ", " << s->progress << " progress events, " << s->keepalives << " keep-alives, " << s->whole_text << " text events"
                << (s->closing.empty() ? "" : ", closing " + s->closing) << "\n";
    }
    r.subs_compacted += s->compacted && s->compacted_count == chunks;
    r.closed += !s->closing.empty();
    if (!s->closing.empty() && r.closed == 1) std::cerr << "live_bench: " << label << ": server closed a stream: " << s->closing << "\n";
  }
  r.events_per_s = loop.chunk_events > 0 ? static_cast<double>(loop.chunk_events) / loop.DeliverSeconds() : 0;
  r.samples = static_cast<int64_t>(loop.book.lat_ms.size());
  r.negative = loop.book.negative;
  r.early_max_ms = loop.book.early_max_ms;
  r.p50 = Quantile(loop.book.lat_ms, 0.50);
  r.p99 = Quantile(loop.book.lat_ms, 0.99);
  r.max = loop.book.lat_ms.empty() ? 0 : loop.book.lat_ms.back();  // sorted by Quantile
  std::cerr << "live_bench: " << label << ": " << gens << " generations x " << chunks << " chunks, " << r.subs_ready
            << " subscribers (" << r.subs_complete << " got every seq once in order, " << r.subs_compacted
            << " the compacted event), " << loop.chunk_events << " chunk events, " << r.samples << " latencies ("
            << r.negative << " read before their 202); producer " << r.produce_cps << " chunks/s, "
            << r.producer_errors << " errors\n";
  if (subs > 0) {
    std::cerr << "live_bench: " << label << ": slowest events (ms, generation index, seq, s after start):";
    for (const auto& w : loop.book.worst) std::cerr << " " << w.ms << "/" << w.gi << "/" << w.seq << "/" << w.at_s;
    std::cerr << "\n";
  }
  return r;
}

void EmitLive(const std::string& p, const LiveResult& r) {
  Emit(p + "_p50_ms", r.p50);
  Emit(p + "_p99_ms", r.p99);
  Emit(p + "_max_ms", r.max);
  Emit(p + "_events_per_s", r.events_per_s);
  Emit(p + "_produce_cps", r.produce_cps);
  Emit(p + "_subs_ready", static_cast<double>(r.subs_ready));
  Emit(p + "_subs_complete", static_cast<double>(r.subs_complete));
  Emit(p + "_subs_compacted", static_cast<double>(r.subs_compacted));
  Emit(p + "_out_of_order", static_cast<double>(r.out_of_order));
  Emit(p + "_bad_text", static_cast<double>(r.bad_text));
  Emit(p + "_missing", static_cast<double>(r.missing));
  Emit(p + "_closed_by_server", static_cast<double>(r.closed));
  Emit(p + "_failed", static_cast<double>(r.failed));
  Emit(p + "_producer_errors", static_cast<double>(r.producer_errors));
  Emit(p + "_negative", static_cast<double>(r.negative));
  Emit(p + "_early_max_ms", r.early_max_ms);
  Emit(p + "_samples", static_cast<double>(r.samples));
  Emit(p + "_lifecycle_compacted", static_cast<double>(r.lifecycle_compacted));
}

// ---- load: the chunk path alone (as ingest_bench's single-chunk phase) ----------------------------------

struct LoadResult {
  double seconds = 0;
  int64_t chunks = 0, errors = 0;
  std::vector<double> lat_ms;
};

struct LoadConn {
  int client = 0;
  int fd = -1;
  int64_t sent = 0;
  std::string in;
  Clk::time_point t0;
};

LoadResult RunLoad(const Options& o, const Texts& texts, int64_t gen_base, Cpu* cpu) {
  std::atomic<bool> stop{false}, measuring{false};
  const int threads_n = std::max(1, std::min(o.client_threads, o.clients));
  std::vector<LoadResult> per(static_cast<size_t>(threads_n));
  const std::string body = "{\"data\":\"" + texts.Of(0) + "\"}";
  const int64_t rotate_every = 20000;  // a new generation well below the per-generation limits
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_n; ++t) {
    threads.emplace_back([&, t] {
      LoadResult& r = per[static_cast<size_t>(t)];
      r.lat_ms.reserve(400000);
      std::vector<LoadConn> conns;
      for (int c = t; c < o.clients; c += threads_n) {
        conns.emplace_back();
        conns.back().client = c;
      }
      int ep = epoll_create1(EPOLL_CLOEXEC);
      auto send_next = [&](LoadConn& c) {
        int64_t g = gen_base + c.client + static_cast<int64_t>(o.clients) * (c.sent / rotate_every);
        if (!SendAll(c.fd, Post("/v1/orgs/" + std::to_string(o.org) + "/generations/" + std::to_string(g) + "/chunks", body))) {
          std::perror("live_bench: load write");
          std::exit(1);
        }
        c.t0 = Clk::now();
      };
      for (auto& c : conns) {
        c.fd = ConnectTo(o.port);
        if (c.fd < 0) {
          std::perror("live_bench: load connect");
          std::exit(1);
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = &c;
        epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
      }
      for (auto& c : conns) send_next(c);
      std::vector<epoll_event> events(conns.size());
      bool logged = false;
      while (!stop.load(std::memory_order_relaxed)) {
        int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
        for (int i = 0; i < n; ++i) {
          auto& c = *static_cast<LoadConn*>(events[static_cast<size_t>(i)].data.ptr);
          char buf[16384];
          ssize_t k = read(c.fd, buf, sizeof buf);
          if (k <= 0) {
            if (k < 0 && errno == EAGAIN) continue;
            std::cerr << "live_bench: a load connection was closed by ingest\n";
            std::exit(1);
          }
          c.in.append(buf, static_cast<size_t>(k));
          int status = 0;
          if (!TakeResponse(c.in, &status)) continue;
          auto t1 = Clk::now();
          bool ok = status == 202;
          if (ok) ++c.sent;
          if (!ok && !logged) {
            std::cerr << "live_bench: load: chunk answered " << status << "\n";
            logged = true;
          }
          if (measuring.load(std::memory_order_relaxed)) {
            if (ok) {
              ++r.chunks;
              r.lat_ms.push_back(Seconds(t1 - c.t0) * 1000.0);
            } else {
              ++r.errors;
            }
          }
          send_next(c);
        }
      }
      for (auto& c : conns) close(c.fd);
      close(ep);
    });
  }
  SleepS(o.warmup_s);
  cpu->Start();
  auto start = Clk::now();
  measuring.store(true);
  SleepS(o.duration_s);
  measuring.store(false);
  LoadResult total;
  total.seconds = Seconds(Clk::now() - start);
  stop.store(true);
  for (auto& th : threads) th.join();
  for (auto& r : per) {
    total.chunks += r.chunks;
    total.errors += r.errors;
    total.lat_ms.insert(total.lat_ms.end(), r.lat_ms.begin(), r.lat_ms.end());
  }
  return total;
}

void EmitLoad(const std::string& p, LoadResult& r) {
  Emit(p + "_cps", static_cast<double>(r.chunks) / r.seconds);
  Emit(p + "_p50_ms", Quantile(r.lat_ms, 0.50));
  Emit(p + "_p99_ms", Quantile(r.lat_ms, 0.99));
  Emit(p + "_errors", static_cast<double>(r.errors));
}

void LoadPart(const Options& o, const Texts& texts, RedisClient& redis) {
  Cpu cpu{o.pid, 0, &redis};
  // c0: the chunk path alone, first and last, so the reference is the mean of two runs around the others: on
  // a shared 2-core machine the throughput moves by 10% or more between minutes.
  auto alone = [&](const std::string& p, int64_t gen_base) {
    MustOk(redis.Command({"FLUSHALL"}).status(), "FLUSHALL");
    LoadResult r = RunLoad(o, texts, gen_base, &cpu);
    cpu.Emit(p);
    EmitLoad(p, r);
    std::cerr << "live_bench: load alone: " << r.chunks << " chunks in " << r.seconds << " s\n";
    return static_cast<double>(r.chunks) / r.seconds;
  };
  const double first = alone("live_c0a", o.gen_base + 3000000);

  // The paced producer runs from before the load's warm-up to after its measurement.
  const int64_t chunks = static_cast<int64_t>(std::ceil(o.rate * (o.warmup_s + o.duration_s + 2.5)));
  auto beside = [&](int subs, const std::string& p, int64_t gen_base) {
    MustOk(redis.Command({"FLUSHALL"}).status(), "FLUSHALL");
    std::atomic<bool> producing{false};
    LiveResult live;
    std::thread t([&] { live = RunLive(o, texts, subs, chunks, gen_base, false, &producing, p); });
    while (!producing.load()) SleepS(0.01);
    LoadResult load = RunLoad(o, texts, gen_base + 100000, &cpu);
    cpu.Emit(p);
    t.join();
    EmitLoad(p, load);
    EmitLive(p + "_live", live);
    std::cerr << "live_bench: load beside " << p << ": " << load.chunks << " chunks in " << load.seconds << " s\n";
    return (static_cast<double>(load.chunks) / load.seconds) + live.produce_cps;  // the whole chunk path
  };
  // c1: beside the live part's producer without subscribers (what the 2 000 chunks/s themselves cost).
  beside(0, "live_c1", o.gen_base + 4000000);
  // c2: beside the whole live part: the producer and 1 000 subscribers reading 20 000 events/s. Run twice,
  // here and again just before the last run alone, like the reference: the target is the ratio of the means.
  const double c2a = beside(o.subs, "live_c2", o.gen_base + 5000000);
  // Beside n streams of generations that do not start: nothing is delivered, but while anybody watches, the
  // hub's tail reads every chunk of every generation from the chunk streams, and the hub keeps its readers.
  // c3: one stream (what the tail's reading alone costs); c4: the idle part's streams (what their number costs).
  auto beside_idle = [&](int n, const std::string& p, int64_t gen_base) {
    MustOk(redis.Command({"FLUSHALL"}).status(), "FLUSHALL");
    LiveLoop idle(o, texts);
    idle.OpenSubs(
        n, [&](int i) { return StreamPath(o.org, gen_base + i); }, [](int) { return 0; }, false, 60 + n / 200.0);
    int64_t open = 0;
    for (const auto& s : idle.subs) open += s->ready && !s->ended;
    auto settle = Clk::now() + std::chrono::seconds(2);  // the hub's first resync of each generation
    while (Clk::now() < settle) idle.Poll(100);
    std::atomic<bool> stop{false};
    std::thread t([&] {
      while (!stop.load()) idle.Poll(50);
    });
    LoadResult load = RunLoad(o, texts, gen_base + 1000000, &cpu);
    cpu.Emit(p);
    stop.store(true);
    t.join();
    EmitLoad(p, load);
    Emit(p + "_streams_open", static_cast<double>(open));
    std::cerr << "live_bench: load beside " << open << " idle streams: " << load.chunks << " chunks in " << load.seconds << " s\n";
  };
  beside_idle(1, "live_c3", o.gen_base + 6000000);
  if (o.idle > 1) beside_idle(o.idle, "live_c4", o.gen_base + 8000000);
  const double c2b = beside(o.subs, "live_c2b", o.gen_base + 9000000);
  Emit("live_c2_mean_cps", (c2a + c2b) / 2);
  const double last = alone("live_c0b", o.gen_base + 9500000);
  Emit("live_c0_cps", (first + last) / 2);
  MustOk(redis.Command({"FLUSHALL"}).status(), "FLUSHALL");
}

// ---- compactor ------------------------------------------------------------------------------------------

pid_t StartCompactor(const Options& o) {
  pid_t pid = SpawnBinary(o.compactor_bin, {"REDIS_PORT=" + std::to_string(o.redis_port), "DATABASE_URL=sqlite:" + o.db,
                                            "CONSUMER_NAME=live-bench", "METRICS_LISTEN=127.0.0.1:0", "LOG_LEVEL=warn"});
  std::cout << "compactor_pid=" << pid << std::endl;  // run.sh's trap stops it if this driver is interrupted
  // Ready once its migration made the rows table: ingest's hub looks rows up for generations not started.
  auto deadline = Clk::now() + std::chrono::seconds(30);
  while (Clk::now() < deadline) {
    auto store = SqlStore::Open("sqlite:" + o.db);
    if (store.ok() && (*store)->CountGenerations().ok()) return pid;
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      std::cerr << "live_bench: the compactor exited at start\n";
      std::exit(1);
    }
    SleepS(0.1);
  }
  std::cerr << "live_bench: the compactor did not create its tables within 30 s\n";
  std::exit(1);
}

void StopCompactor(pid_t pid) {
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
}

// 10 000 streams need as many descriptors; take what the hard limit allows and shrink the idle part to fit.
void FitDescriptors(Options& o) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  const int64_t spare = 256;
  if (static_cast<int64_t>(rl.rlim_cur) < o.idle + spare) {
    int fit = static_cast<int>(std::max<int64_t>(0, static_cast<int64_t>(rl.rlim_cur) - spare));
    std::cerr << "live_bench: RLIMIT_NOFILE is " << rl.rlim_cur << ": " << fit << " idle streams instead of "
              << o.idle << " (raise ulimit -n)\n";
    o.idle = fit;
  }
}

}  // namespace

int main(int argc, char** argv) {
  Flags f(argc, argv);
  Options o;
  o.port = static_cast<int>(f.Int("port", 0));
  o.redis_port = static_cast<int>(f.Int("redis-port", 0));
  o.pid = static_cast<int>(f.Int("pid", 0));
  o.compactor_bin = f.Str("compactor-bin", "");
  o.db = f.Str("db", "");
  o.phases = f.Str("phases", o.phases);
  o.idle = static_cast<int>(f.Int("idle", o.idle));
  o.idle_per_gen = static_cast<int>(f.Int("idle-per-gen", o.idle_per_gen));
  o.idle_hold_s = f.Double("idle-hold", o.idle_hold_s);
  o.gens = static_cast<int>(f.Int("gens", o.gens));
  o.subs = static_cast<int>(f.Int("subs", o.subs));
  o.rate = f.Double("rate", o.rate);
  o.live_s = f.Double("live-seconds", o.live_s);
  o.settle_s = f.Double("settle", o.settle_s);
  o.chunk_bytes = static_cast<int>(f.Int("chunk-bytes", o.chunk_bytes));
  o.clients = static_cast<int>(f.Int("clients", o.clients));
  o.client_threads = static_cast<int>(f.Int("client-threads", o.client_threads));
  o.warmup_s = f.Double("warmup", o.warmup_s);
  o.duration_s = f.Double("duration", o.duration_s);
  if (o.port == 0 || o.redis_port == 0 || o.pid == 0 || (!o.compactor_bin.empty() && o.db.empty())) {
    std::cerr << "usage: live_bench --port INGEST_PORT --redis-port P --pid INGEST_PID [--compactor-bin PATH --db FILE]\n"
                 "  [--phases idle,live,load] [--idle 10000] [--idle-per-gen 1] [--idle-hold 5] [--gens 100] [--subs 10]\n"
                 "  [--rate 20] [--live-seconds 20] [--settle 0.5] [--chunk-bytes 200] [--clients 64] [--client-threads 2]\n"
                 "  [--warmup 1] [--duration 10]\n";
    return 2;
  }
  o.gen_base = (static_cast<int64_t>(time(nullptr)) % 1000000) * 10000000;
  signal(SIGPIPE, SIG_IGN);
  FitDescriptors(o);
  const Texts texts(o.chunk_bytes);
  auto redis = ConnectOrDie(o.redis_port);
  MustOk(redis->Command({"FLUSHALL"}).status(), "FLUSHALL");
  auto has = [&](const char* p) { return o.phases.find(p) != std::string::npos; };

  // The compactor runs through the idle and live parts, as it would beside a real ingest: it creates the
  // rows table the hub looks not-yet-started generations up in, and compacting each generation is what
  // sends its subscribers the final `compacted` event. The load part runs without it, as ingest_bench does,
  // so its chunk-path figure is comparable with the ingest table's.
  pid_t compactor = 0;
  if (!o.compactor_bin.empty() && (has("idle") || has("live"))) compactor = StartCompactor(o);

  if (has("idle")) IdlePart(o, texts, *redis);

  if (has("live")) {
    const int64_t chunks = static_cast<int64_t>(std::llround(o.rate * o.live_s));
    Cpu cpu{o.pid, compactor, redis.get()};
    LiveResult r = RunLive(o, texts, o.subs, chunks, o.gen_base + 2000000, compactor > 0, nullptr, "live_b", &cpu);
    Emit("live_b_gens", o.gens);
    Emit("live_b_subs_target", o.gens * o.subs);
    Emit("live_b_chunks_per_gen", static_cast<double>(chunks));
    Emit("live_b_expect_compacted", compactor > 0);
    EmitLive("live_b", r);
    Emit("live_rss_after_live_mb", RssMb(o.pid));
  }
  if (compactor > 0) StopCompactor(compactor);

  if (has("load")) LoadPart(o, texts, *redis);
  Emit("live_ingest_hwm_mb", static_cast<double>(ProcStatusKb(o.pid, "VmHWM")) / 1024.0);
  return 0;
}
