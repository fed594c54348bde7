#pragma once
// A progress bar for long streamfleetctl operations, drawn on stderr only when stderr is a terminal, so
// scripts and --json output (stdout) never see it.
#include <cstdint>
#include <string>

namespace streamfleet::ctl {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total);
  ~ProgressBar();  // finishes the line if one was drawn
  void Update(int64_t done);

 private:
  std::string label_;
  int64_t total_;
  bool enabled_;
  int last_permille_ = -1;
};

}  // namespace streamfleet::ctl
