#pragma once
// How a streamfleetctl command fails. A command throws one of these; main prints "streamfleetctl: <message>"
// on stderr and exits with the code docs/CLI.md promises. Exceptions rather than Status returns because a
// command is a straight line of steps that each either work or end the process.
#include <string>
#include <utility>

#include "streamfleet/base/status.h"

namespace streamfleet::ctl {

// The operation failed: exit 1.
struct Failure {
  std::string message;
};
// The command line asks for something that cannot be meant: exit 2, like CLI11's own usage errors.
struct Usage {
  std::string message;
};

// The status, or a Failure "what: <status>".
inline void Must(const Status& s, const std::string& what) {
  if (!s.ok()) throw Failure{what + ": " + s.ToString()};
}
template <typename T>
T Must(StatusOr<T> v, const std::string& what) {
  Must(v.status(), what);
  return std::move(v).value();
}

}  // namespace streamfleet::ctl
