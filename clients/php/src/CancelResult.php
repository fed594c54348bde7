<?php
declare(strict_types=1);

namespace Streamfleet;

/**
 * What cancel() returns: the task is cancelled (state "cancelled") and will not run (again). previousState is
 * what it was: "pending", "scheduled" or "retry_scheduled"; "cancelled" when it already was (cancelling twice is
 * not an error).
 */
final class CancelResult
{
    public function __construct(
        public readonly string $taskId,
        public readonly string $state,
        public readonly string $previousState,
    ) {
    }
}
