#include "tools/progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace streamfleet::ctl {

ProgressBar::ProgressBar(std::string label, int64_t total)
    : label_(std::move(label)), total_(std::max<int64_t>(total, 1)), enabled_(isatty(STDERR_FILENO) == 1) {}

ProgressBar::~ProgressBar() {
  if (enabled_ && last_permille_ >= 0) std::fputc('\n', stderr);
}

void ProgressBar::Update(int64_t done) {
  if (!enabled_) return;
  int permille = static_cast<int>(std::clamp<int64_t>(done * 1000 / total_, 0, 1000));
  if (permille == last_permille_) return;  // redraw only when the bar moves: no terminal flood
  last_permille_ = permille;
  constexpr int kWidth = 30;
  int filled = permille * kWidth / 1000;
  std::fprintf(stderr, "\r%s [%-*s] %3d%% %lld/%lld", label_.c_str(), kWidth, std::string(filled, '#').c_str(),
               permille / 10, static_cast<long long>(done), static_cast<long long>(total_));
  std::fflush(stderr);
}

}  // namespace streamfleet::ctl
