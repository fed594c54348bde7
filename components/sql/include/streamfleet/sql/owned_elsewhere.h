#pragma once
// The error every layer gives when a generation id belongs to another organization: the SQL upsert (whose
// condition includes the organization, the backstop of tenant isolation), the chunk path's owner record
// (streamfleet/chunks/generation_owner.h) and the HTTP routes that answer 409 with it. It never names the
// owner. Here, in the lowest component that raises it, so the chunk path and the store share one message.
#include <cstdint>

#include "streamfleet/base/status.h"

namespace streamfleet {

inline constexpr const char* kOwnedElsewhere = "generation_owned_elsewhere";

// kFailedPrecondition whose message starts with kOwnedElsewhere.
Status OwnedElsewhereError(int64_t gen);
bool IsOwnedElsewhere(const Status& s);

}  // namespace streamfleet
