<?php
declare(strict_types=1);

namespace Streamfleet;

/**
 * What enqueue() and enqueueMany() return for each task.
 *   state "pending":   in its queue, runs as soon as a worker is free
 *   state "scheduled": delay/runAt in the future, moves to its queue then
 *   state "duplicate": its uniqueKey is held by another task; taskId is that task's id, nothing was enqueued
 */
final class EnqueueResult
{
    public function __construct(
        public readonly string $taskId,
        public readonly string $state,
        public readonly bool $duplicate,
    ) {
    }

    public function isScheduled(): bool
    {
        return $this->state === 'scheduled';
    }
}
