// A worker program of the SDK's kind whose "stubborn" handler ignores its cancellation and, once running,
// asks its own process to stop (SIGTERM): the drain then ends with a handler thread the watchdog abandoned
// still running. Its handler returns only once the process has begun to exit (an atexit hook lets it go
// and waits a moment), as a handler that ends late would: it then returns into the worker, which must not
// have been destroyed under it. worker_shutdown_test.cc runs it.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "streamfleet/worker/worker.h"

namespace {
std::atomic<bool> g_exiting{false};
}  // namespace

int main(int argc, char** argv) {
  std::atexit([] {
    g_exiting.store(true);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  });
  streamfleet::Worker worker;
  streamfleet::HandlerOptions options;
  options.timeout = std::chrono::milliseconds(100);
  worker.Handle(
      "stubborn",
      [](streamfleet::Task&) -> streamfleet::Status {
        kill(getpid(), SIGTERM);
        while (!g_exiting.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // ignores cancelled()
        std::fprintf(stderr, "stubborn handler returned while the process exited\n");
        return streamfleet::Status::Ok();
      },
      options);
  return worker.Run(argc, argv);
}
