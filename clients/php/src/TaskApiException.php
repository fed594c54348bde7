<?php
declare(strict_types=1);

namespace Streamfleet;

/**
 * Every failure of a task API call: the server's answer (HTTP status, its `error` code and `detail`), or,
 * for ConnectionException, no answer at all (status 0).
 *
 * Error codes the server sends (ingest/task_api.cc): invalid_task, invalid_queue, unknown_queue, invalid_json,
 * invalid_batch, invalid_id (400); unauthorized (401); forbidden, task_api_disabled (403); not_found (404);
 * method_not_allowed (405); too_late (409); payload_too_large, body_too_large (413); unsupported_media_type
 * (415); internal (500); redis_unavailable (503, with Retry-After). An answer without a JSON error body (a proxy's
 * 502 page, say) gets the code "http_STATUS" and the start of the body as its detail.
 */
class TaskApiException extends \RuntimeException
{
    /**
     * @param int         $status     the HTTP status; 0 when no answer arrived (ConnectionException)
     * @param string      $errorCode  the server's `error` field, e.g. "unknown_queue"
     * @param string      $detail     the server's `detail` field: what was wrong, for people
     * @param int|null    $retryAfter seconds from the Retry-After header (503 redis_unavailable), else null
     * @param array|null  $body       the whole decoded JSON answer, when it was JSON
     */
    public function __construct(
        public readonly int $status,
        public readonly string $errorCode,
        public readonly string $detail,
        public readonly ?int $retryAfter = null,
        public readonly ?array $body = null,
        ?\Throwable $previous = null,
    ) {
        $where = $status > 0 ? "HTTP $status " : '';
        parent::__construct("streamfleet task API: {$where}{$errorCode}: {$detail}", $status, $previous);
    }

    /**
     * Whether sending the same request again later may succeed: Redis or ingest unavailable (503, 502, 504),
     * rate limited (429), or no answer (ConnectionException). Not whether it is safe to: after a 503, 502, 504
     * or no answer an enqueue may have written its task, and an enqueueMany some or all of its tasks (a batch's
     * tasks are written one after another; a 503 can come after some of them), so sending it again enqueues
     * those twice. Retry an enqueue or a batch only when every task in it has a uniqueKey (the ones already in
     * are then answered as duplicates) or when running a task twice is harmless.
     */
    public function isRetryable(): bool
    {
        return in_array($this->status, [0, 429, 502, 503, 504], true);
    }
}
