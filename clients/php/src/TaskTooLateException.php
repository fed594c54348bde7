<?php
declare(strict_types=1);

namespace Streamfleet;

/**
 * 409 too_late from cancel(): the task has started or finished, so it can no longer be cancelled.
 * $state is its state then: "running", "succeeded" or "dead"
 */
class TaskTooLateException extends TaskApiException
{
    public readonly string $state;

    public function __construct(int $status, string $errorCode, string $detail, ?int $retryAfter = null,
                                ?array $body = null, ?\Throwable $previous = null)
    {
        parent::__construct($status, $errorCode, $detail, $retryAfter, $body, $previous);
        $this->state = is_string($body['state'] ?? null) ? $body['state'] : '';
    }
}
