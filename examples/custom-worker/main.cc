// custom-worker: two task types of an app's own, in C++, run by the streamfleet task SDK
// (streamfleet/worker/worker.h; the guide is docs/handlers.md) next to the built-in ones, so this binary can
// replace streamfleet-queue-worker in the fleet. Configuration, /metrics, SIGTERM drain: as the queue-worker.
//
//   thumbnail.render  {"image": "s3://bucket/cat.png", "width": 64?, "height": 64?}
//                     -> result {"thumbnail": "thumbnails/<task id>.png", "width": 64, "height": 64}
//   report.email      {"to": "ops@example.com", "report": "daily" | "weekly"}
//                     -> result {"sent_to": ..., "message_id": ...}; a bad payload is dead-lettered at once
//
//   custom-worker                             runs the worker (REDIS_URL, QUEUES, WORKER_CONCURRENCY, ...)
//   custom-worker enqueue TYPE [PAYLOAD]      enqueues one task from C++ and prints its id
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "streamfleet/base/log.h"
#include "streamfleet/worker/worker.h"

using nlohmann::json;
using streamfleet::Status;

namespace {

// A field that must be a string (permanent error otherwise: retrying the same payload cannot help).
Status RequireString(const json& j, const char* field, std::string* out) {
  if (!j.is_object() || !j.contains(field) || !j[field].is_string()) {
    return Status::InvalidArgument(std::string("payload needs \"") + field + "\": a string");
  }
  *out = j[field].get<std::string>();
  return Status::Ok();
}

// An optional size in pixels, 1..4096.
Status OptionalSize(const json& j, const char* field, int fallback, int* out) {
  *out = fallback;
  if (!j.contains(field)) return Status::Ok();
  if (!j[field].is_number_integer() || j[field].get<int64_t>() < 1 || j[field].get<int64_t>() > 4096) {
    return Status::InvalidArgument(std::string("\"") + field + "\" must be an integer 1..4096");
  }
  *out = j[field].get<int>();
  return Status::Ok();
}

Status RenderThumbnail(streamfleet::Task& task) {
  auto payload = task.payload_json();
  if (!payload.ok()) return payload.status();  // not JSON: kInvalidArgument, dead-lettered
  std::string image;
  int width = 0, height = 0;
  SF_RETURN_IF_ERROR(RequireString(*payload, "image", &image));
  SF_RETURN_IF_ERROR(OptionalSize(*payload, "width", 128, &width));
  SF_RETURN_IF_ERROR(OptionalSize(*payload, "height", 128, &height));
  // The work, in steps; between them, give up once the attempt is cancelled (its timeout passed: it already
  // counts as failed and will run again).
  for (int step = 0; step < 3; ++step) {
    if (task.cancelled()) return Status::DeadlineExceeded("cancelled while rendering");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // fetch, scale, upload
  }
  // Idempotent: the output is named after the task id, so a second run (at-least-once delivery) overwrites
  // the same object instead of making another.
  std::string out = "thumbnails/" + task.id() + ".png";
  SF_LOG_INFO("rendered {} ({}x{}) from {}", out, width, height, image);
  task.set_result(json{{"thumbnail", out}, {"width", width}, {"height", height}}.dump());
  return Status::Ok();
}

Status EmailReport(streamfleet::Task& task) {
  auto payload = task.payload_json();
  if (!payload.ok()) return payload.status();
  std::string to, report;
  SF_RETURN_IF_ERROR(RequireString(*payload, "to", &to));
  SF_RETURN_IF_ERROR(RequireString(*payload, "report", &report));
  if (to.find('@') == std::string::npos) return Status::InvalidArgument("\"to\" is not an email address: " + to);
  if (report != "daily" && report != "weekly") return Status::InvalidArgument("unknown report \"" + report + "\"");
  // A real handler calls its mail provider here with task.id() as the idempotency key, so a redelivered task
  // is not mailed twice; a timeout or a 5xx from it is Status::Unavailable (retried with backoff).
  SF_LOG_INFO("emailed the {} report to {} (attempt {} of {})", report, to, task.attempt() + 1, task.max_attempts());
  task.set_result(json{{"sent_to", to}, {"message_id", "msg-" + task.id()}}.dump());
  return Status::Ok();
}

// The producer side: what an app's C++ code does to start a task.
int EnqueueOne(const std::string& type, const std::string& payload) {
  auto config = streamfleet::LoadConfig(streamfleet::ProcessEnv(), "127.0.0.1:0");
  if (!config.ok()) {
    std::fprintf(stderr, "configuration: %s\n", config.status().ToString().c_str());
    return 2;
  }
  auto task = streamfleet::Enqueue(*config, type, payload);
  if (!task.ok()) {
    std::fprintf(stderr, "enqueue: %s\n", task.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", task->id.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "enqueue") return EnqueueOne(argv[2], argc > 3 ? argv[3] : "{}");

  streamfleet::WorkerOptions options;
  options.name = "custom-worker";
  options.summary = "Renders thumbnails and emails reports (examples/custom-worker), and runs the built-in tasks.";
  options.log_name = "custom-worker";
  streamfleet::Worker worker(options);
  // 3 attempts (backoff from 0.5 s, at most 10 s), 30 s each, at most 2 at once per process (memory).
  streamfleet::HandlerOptions render;
  render.retry = streamfleet::RetryPolicy{3, 500, 10000};
  render.timeout = std::chrono::seconds(30);
  render.concurrency = 2;
  worker.Handle("thumbnail.render", RenderThumbnail, render);
  // The fleet's defaults (TASK_MAX_ATTEMPTS, TASK_BACKOFF_*, TASK_TIMEOUT); TASK_POLICY / TASK_TIMEOUTS still
  // override any of these per type.
  worker.Handle("report.email", EmailReport);
  return worker.Run(argc, argv);
}
