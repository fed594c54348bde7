#include "process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace streamfleet {

namespace {

prometheus::Gauge& G(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

double OpenFds() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  double n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n - 1;  // the descriptor opendir itself holds
}

}  // namespace

ProcessMetrics::ProcessMetrics(prometheus::Registry& r)
    : cpu_seconds_(prometheus::BuildCounter()
                       .Name("process_cpu_seconds_total")
                       .Help("Total user and system CPU time spent in seconds")
                       .Register(r)
                       .Add({})),
      resident_bytes_(G(r, "process_resident_memory_bytes", "Resident memory size in bytes")),
      virtual_bytes_(G(r, "process_virtual_memory_bytes", "Virtual memory size in bytes")),
      open_fds_(G(r, "process_open_fds", "Number of open file descriptors")),
      max_fds_(G(r, "process_max_fds", "Maximum number of open file descriptors")) {}

void ProcessMetrics::Refresh() {
  std::ifstream f("/proc/self/stat");
  std::string line;
  if (std::getline(f, line)) {
    // Field 2 (comm) may hold spaces; the fields after its closing parenthesis are space-separated.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    double utime = 0, stime = 0, vsize = 0, rss_pages = 0;
    for (int i = 3; i <= 24 && rest >> field; ++i) {
      if (i == 14) utime = std::stod(field);
      if (i == 15) stime = std::stod(field);
      if (i == 23) vsize = std::stod(field);
      if (i == 24) rss_pages = std::stod(field);
    }
    double cpu = (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
    if (cpu > cpu_seconds_.Value()) cpu_seconds_.Increment(cpu - cpu_seconds_.Value());
    virtual_bytes_.Set(vsize);
    resident_bytes_.Set(rss_pages * static_cast<double>(sysconf(_SC_PAGESIZE)));
  }
  double fds = OpenFds();
  if (fds >= 0) open_fds_.Set(fds);
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) max_fds_.Set(static_cast<double>(lim.rlim_cur));
}

}  // namespace streamfleet
