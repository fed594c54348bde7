// streamfleet-queue-worker: the built-in task handlers (and TASK_ROUTES) run by the C++ task SDK
// (streamfleet/worker/worker.h), whose defaults are this worker's. A worker with handlers of its own is the
// same program with Handle calls (docs/handlers.md, examples/custom-worker).
#include "streamfleet/worker/worker.h"

int main(int argc, char** argv) { return streamfleet::Worker().Run(argc, argv); }
