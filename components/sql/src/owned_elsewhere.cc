#include "streamfleet/sql/owned_elsewhere.h"

#include <string>

namespace streamfleet {

Status OwnedElsewhereError(int64_t gen) {
  return Status::FailedPrecondition(std::string(kOwnedElsewhere) + ": generation " + std::to_string(gen) +
                                    " is used by another organization");
}

bool IsOwnedElsewhere(const Status& s) {
  return s.code() == StatusCode::kFailedPrecondition && s.message().find(kOwnedElsewhere) != std::string::npos;
}

}  // namespace streamfleet
