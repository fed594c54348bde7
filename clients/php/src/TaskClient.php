<?php
declare(strict_types=1);

namespace Streamfleet;

/**
 * A client of ingest's HTTP task API (ingest/task_api.h): enqueue tasks for the fleet's queue-workers, read
 * their status, cancel them before they start.
 *
 *   $tasks = new TaskClient('http://ingest:8080', getenv('STREAMFLEET_TASK_TOKEN') ?: null);
 *   $r = $tasks->enqueue('report.build', ['user' => 7], ['queue' => 'low', 'delay' => '30s']);
 *   $tasks->status($r->taskId)['state'];   // "scheduled", later "pending", "running", "succeeded"
 *
 * Every call is one HTTP request over one curl handle per client, so consecutive calls reuse the connection
 * (keep-alive). Nothing is retried behind the caller's back: every failure is a TaskApiException (subclasses
 * ConnectionException, TaskNotFoundException, TaskTooLateException); invalid arguments are
 * \InvalidArgumentException before anything is sent.
 *
 * Not for concurrent use from several threads (one curl handle); a process that forks gets a new handle in the
 * child on its next call.
 */
final class TaskClient implements TaskClientInterface
{
    public const VERSION = '0.1.0';
    /** The most tasks one enqueueMany() call (POST /v1/tasks:batch) takes. */
    public const MAX_BATCH = 1000;

    /** enqueue()'s option names and their field in the request. */
    private const OPTIONS = [
        'queue' => 'queue',
        'delay' => 'delay',
        'runAt' => 'run_at',
        'uniqueKey' => 'unique_key',
        'uniqueFor' => 'unique_for',
    ];

    private readonly string $baseUrl;
    private readonly ?string $token;
    private ?\CurlHandle $curl = null;
    private int $curlPid = 0;
    private int $connections = 0;

    /**
     * @param string      $baseUrl        ingest's address, e.g. "http://127.0.0.1:8080" (INGEST_LISTEN); a path
     *                                    prefix is kept ("https://gw.example/streamfleet" -> .../streamfleet/v1/tasks)
     * @param string|null $token          a TASK_API_TOKENS token (sent as "Authorization: Bearer"); null or "" sends
     *                                    none, which only an open development ingest accepts
     * @param float       $timeoutSeconds the longest one call may take, connecting included
     */
    public function __construct(string $baseUrl, ?string $token = null, private readonly float $timeoutSeconds = 10.0)
    {
        $baseUrl = rtrim($baseUrl, '/');
        if (!preg_match('#^https?://[^/?\#\s]+(/[^?\#\s]*)?$#i', $baseUrl)) {
            throw new \InvalidArgumentException('baseUrl must be http(s)://host[:port][/prefix], got "'
                . self::redacted($baseUrl, true) . '"');
        }
        if ($token !== null && preg_match('/[^\x21-\x7e]/', $token)) {
            throw new \InvalidArgumentException('token must be visible ASCII characters');
        }
        if (!($timeoutSeconds > 0)) {
            throw new \InvalidArgumentException("timeoutSeconds must be positive, got $timeoutSeconds");
        }
        $this->baseUrl = $baseUrl;
        $this->token = $token === '' ? null : $token;
    }

    /**
     * Enqueues one task (POST /v1/tasks).
     *
     * @param string            $type    the handler name the workers run, e.g. "noop", "webhook"
     * @param array|object|null $payload JSON-encoded as it is; null and [] are sent as {} (an empty object)
     * @param array             $options queue (string, default "default"; must be one of the fleet's QUEUES),
     *                                   delay (seconds int|float, text like "30s"/"5m", or \DateInterval),
     *                                   runAt (\DateTimeInterface, unix seconds int|float, or ISO-8601 text with Z or an offset;
     *                                   not with delay), uniqueKey (string: while a task holds it, enqueueing
     *                                   another with it returns that task as a duplicate), uniqueFor (how long the
     *                                   key is held, same forms as delay; needs uniqueKey)
     * @throws TaskApiException          e.g. 400 unknown_queue, 413 payload_too_large, 403 forbidden,
     *                                   503 redis_unavailable (retryAfter set)
     */
    public function enqueue(string $type, array|object|null $payload = null, array $options = []): EnqueueResult
    {
        [$status, $answer] = $this->request('POST', '/v1/tasks', self::taskBody($type, $payload, $options, 'enqueue'));
        return self::enqueueResult($answer, $status);
    }

    /**
     * Enqueues up to MAX_BATCH tasks in one request (POST /v1/tasks:batch). Every task is checked before
     * anything is written: none is enqueued when one is refused (a 4xx; the exception's detail names it:
     * "tasks[3]: ..."). Past the checks it is not all or nothing: a 503 can come after some tasks were written,
     * and after a 502, a 504 or no answer any may be in; the exception does not say which. Sending the batch
     * again is safe only when every task has a uniqueKey (see TaskApiException::isRetryable()).
     *
     * @param array $tasks a list of ['type' => ..., 'payload' => ..., and enqueue()'s options] arrays
     * @return EnqueueResult[] one per task, in order
     */
    public function enqueueMany(array $tasks): array
    {
        if ($tasks === [] || count($tasks) > self::MAX_BATCH) {
            throw new \InvalidArgumentException('enqueueMany takes 1 to ' . self::MAX_BATCH . ' tasks, got '
                . count($tasks));
        }
        if (!array_is_list($tasks)) {
            throw new \InvalidArgumentException('enqueueMany takes a list of tasks');
        }
        $bodies = [];
        foreach ($tasks as $i => $task) {
            $where = "tasks[$i]";
            if (!is_array($task)) {
                throw new \InvalidArgumentException("$where must be an array ['type' => ..., 'payload' => ...]");
            }
            $type = $task['type'] ?? null;
            if (!is_string($type)) {
                throw new \InvalidArgumentException("$where: 'type' (a string) is required");
            }
            $payload = $task['payload'] ?? null;
            if (!is_array($payload) && !is_object($payload) && $payload !== null) {
                throw new \InvalidArgumentException("$where: 'payload' must be an array, an object or null");
            }
            unset($task['type'], $task['payload']);
            $bodies[] = self::taskBody($type, $payload, $task, $where);
        }
        [$status, $answer] = $this->request('POST', '/v1/tasks:batch', ['tasks' => $bodies]);
        $list = $answer['tasks'] ?? null;
        if (!is_array($list) || !array_is_list($list) || count($list) !== count($bodies)) {
            throw new TaskApiException($status, 'invalid_response', 'a batch answer without one entry per task: '
                . self::excerpt(json_encode($answer)), null, $answer);
        }
        return array_map(fn ($a) => self::enqueueResult(is_array($a) ? $a : [], $status), $list);
    }

    /**
     * A task's status record (GET /v1/tasks/{id}), or null when there is no such task (unknown, or its record
     * expired after TASK_RESULT_TTL). Keys: task_id, state ("scheduled", "pending", "running", "retry_scheduled",
     * "succeeded", "dead", "cancelled"), type, queue, attempts (int), error, result, worker, and the int timestamps
     * enqueued_at_ms, started_at_ms, finished_at_ms, run_at_ms, cancelled_at_ms: each only once it applies.
     */
    public function status(string $id): ?array
    {
        [$status, $answer] = $this->request('GET', self::taskPath($id), null, [404 => 'not_found']);
        return $status === 404 ? null : $answer;
    }

    /**
     * Cancels a task that is pending, scheduled or retry_scheduled (DELETE /v1/tasks/{id}): it will not run
     * (again). Cancelling a cancelled task again returns previousState "cancelled".
     *
     * @throws TaskTooLateException  409: it is running or finished ($e->state says which)
     * @throws TaskNotFoundException 404: no such task, or its record expired
     */
    public function cancel(string $id): CancelResult
    {
        [, $answer] = $this->request('DELETE', self::taskPath($id));
        return new CancelResult(
            is_string($answer['task_id'] ?? null) ? $answer['task_id'] : $id,
            is_string($answer['state'] ?? null) ? $answer['state'] : 'cancelled',
            is_string($answer['previous_state'] ?? null) ? $answer['previous_state'] : '',
        );
    }

    /**
     * How many TCP connections this client has opened so far: 1 after any number of calls while ingest keeps the
     * connection alive (diagnostics, and the keep-alive test).
     */
    public function connectionsOpened(): int
    {
        return $this->connections;
    }

    /** Closes the connection; the next call opens a new one. */
    public function close(): void
    {
        $this->curl = null;
    }

    public function __clone()
    {
        $this->curl = null;  // a copy gets its own handle and connection
    }

    /** The JSON body of one task: type, payload and the options under their API names. */
    private static function taskBody(string $type, array|object|null $payload, array $options, string $where): array
    {
        if ($type === '') {
            throw new \InvalidArgumentException("$where: the task type must not be empty");
        }
        if ($payload instanceof \JsonSerializable) {
            $payload = $payload->jsonSerialize();
        }
        // PHP cannot tell an empty list from an empty map: an empty payload is the empty object handlers expect.
        if ($payload === null || $payload === []) {
            $payload = new \stdClass();
        }
        $body = ['type' => $type, 'payload' => $payload];
        foreach ($options as $name => $value) {
            if (!is_string($name) || !isset(self::OPTIONS[$name])) {
                throw new \InvalidArgumentException("$where: unknown option \"$name\" (options: "
                    . implode(', ', array_keys(self::OPTIONS)) . ')');
            }
            if ($value === null) {
                continue;
            }
            $body[self::OPTIONS[$name]] = match ($name) {
                'queue', 'uniqueKey' => is_string($value) ? $value
                    : throw new \InvalidArgumentException("$where: $name must be a string"),
                'delay', 'uniqueFor' => self::duration($value, "$where: $name"),
                'runAt' => self::time($value, "$where: runAt"),
            };
        }
        return $body;
    }

    /** Seconds (a number), duration text the server parses ("30s", "5m"), or a \DateInterval. */
    private static function duration(mixed $v, string $what): int|float|string
    {
        if ($v instanceof \DateInterval) {
            $epoch = new \DateTimeImmutable('@0');
            return $epoch->add($v)->getTimestamp() - $epoch->getTimestamp();
        }
        if (is_int($v) || is_float($v) || is_string($v)) {
            return $v;
        }
        throw new \InvalidArgumentException("$what must be seconds, a duration like \"30s\" or a \\DateInterval");
    }

    /** ISO-8601 UTC with milliseconds for a \DateTimeInterface; unix seconds and text as given. */
    private static function time(mixed $v, string $what): int|float|string
    {
        if ($v instanceof \DateTimeInterface) {
            return \DateTimeImmutable::createFromInterface($v)->setTimezone(new \DateTimeZone('UTC'))
                ->format('Y-m-d\TH:i:s.v\Z');
        }
        if (is_int($v) || is_float($v) || is_string($v)) {
            return $v;
        }
        throw new \InvalidArgumentException("$what must be a \\DateTimeInterface, unix seconds or ISO-8601 text");
    }

    private static function taskPath(string $id): string
    {
        if ($id === '') {
            throw new \InvalidArgumentException('a task id must not be empty');
        }
        return '/v1/tasks/' . rawurlencode($id);
    }

    private static function enqueueResult(array $a, int $status): EnqueueResult
    {
        if (!is_string($a['task_id'] ?? null) || !is_string($a['state'] ?? null)) {
            throw new TaskApiException($status, 'invalid_response', 'an enqueue answer without task_id and state: '
                . self::excerpt(json_encode($a)), null, $a);
        }
        return new EnqueueResult($a['task_id'], $a['state'], ($a['duplicate'] ?? false) === true);
    }

    /**
     * The URL for an exception's message: a user and password in it (http://user:pass@host, which curl sends as
     * Basic auth) replaced, so logs of the error do not carry them. A valid base URL's user info ends at the last
     * '@' before the path; in one that is not valid ($malformed) a password may hold '/', '?' or '#', so
     * everything up to the last '@' goes.
     */
    private static function redacted(string $url, bool $malformed = false): string
    {
        $pattern = $malformed ? '#^([a-z][a-z0-9+.-]*://)?.*@#is' : '#^([a-z][a-z0-9+.-]*://)[^/?\#]*@#i';
        return preg_replace($pattern, '$1***@', $url) ?? '(not shown)';
    }

    /**
     * Sends one request and returns [HTTP status, decoded JSON object]. Answers other than 2xx throw, except
     * those whose status and error code are in $passThrough (status => code), which are returned: a 404 from a
     * proxy in front of ingest is an error, not a missing task.
     */
    private function request(string $method, string $path, ?array $body = null, array $passThrough = []): array
    {
        $url = $this->baseUrl . $path;
        $headers = ['Accept: application/json', 'User-Agent: streamfleet-php/' . self::VERSION, 'Expect:'];
        if ($this->token !== null) {
            $headers[] = 'Authorization: Bearer ' . $this->token;
        }
        $h = $this->handle();
        $received = [];
        $opts = [
            CURLOPT_URL => $url,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_NOSIGNAL => true,
            CURLOPT_TIMEOUT_MS => max(1, (int) round($this->timeoutSeconds * 1000)),
            CURLOPT_CONNECTTIMEOUT_MS => max(1, (int) round($this->timeoutSeconds * 1000)),
            CURLOPT_HEADERFUNCTION => static function ($ch, string $line) use (&$received): int {
                if (str_starts_with($line, 'HTTP/')) {
                    $received = [];  // a new response (after a 1xx): only the final one's headers count
                } elseif (($colon = strpos($line, ':')) !== false) {
                    $received[strtolower(trim(substr($line, 0, $colon)))] = trim(substr($line, $colon + 1));
                }
                return strlen($line);
            },
        ];
        if ($body !== null) {
            try {
                $json = json_encode($body, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE
                    | JSON_PRESERVE_ZERO_FRACTION);
            } catch (\JsonException $e) {
                throw new \InvalidArgumentException('the task cannot be encoded as JSON: ' . $e->getMessage(), 0, $e);
            }
            $headers[] = 'Content-Type: application/json';
            $opts[CURLOPT_POST] = true;
            $opts[CURLOPT_POSTFIELDS] = $json;
        } elseif ($method === 'GET') {
            $opts[CURLOPT_HTTPGET] = true;
        } else {
            $opts[CURLOPT_CUSTOMREQUEST] = $method;
        }
        $opts[CURLOPT_HTTPHEADER] = $headers;
        curl_setopt_array($h, $opts);

        $raw = curl_exec($h);
        $this->connections += (int) curl_getinfo($h, CURLINFO_NUM_CONNECTS);
        if ($raw === false) {
            $errno = curl_errno($h);
            $code = $errno === CURLE_OPERATION_TIMEDOUT ? 'timeout' : 'connection_failed';
            throw new ConnectionException(0, $code, curl_error($h) . " ($method " . self::redacted($url) . ')');
        }
        $status = (int) curl_getinfo($h, CURLINFO_RESPONSE_CODE);
        $decoded = null;
        if (is_string($raw) && $raw !== '') {
            $decoded = json_decode($raw, true, 512, JSON_BIGINT_AS_STRING);
            if (!is_array($decoded)) {
                $decoded = null;
            }
        }
        if ($status >= 200 && $status < 300) {
            if ($decoded === null) {
                throw new TaskApiException($status, 'invalid_response', "$method $path answered something other "
                    . 'than a JSON object: ' . self::excerpt((string) $raw));
            }
            return [$status, $decoded];
        }
        if (isset($passThrough[$status]) && ($decoded['error'] ?? null) === $passThrough[$status]) {
            return [$status, $decoded];
        }
        throw self::error($method, $status, $decoded, (string) $raw, $received['retry-after'] ?? null);
    }

    private static function error(string $method, int $status, ?array $decoded, string $raw,
                                  ?string $retryAfter): TaskApiException
    {
        $code = is_string($decoded['error'] ?? null) ? $decoded['error'] : "http_$status";
        $detail = is_string($decoded['detail'] ?? null) ? $decoded['detail']
            : ($decoded !== null ? self::excerpt(json_encode($decoded)) : self::excerpt($raw));
        $after = self::retryAfterSeconds($retryAfter);
        if ($status === 409 && $code === 'too_late') {
            return new TaskTooLateException($status, $code, $detail, $after, $decoded);
        }
        if ($status === 404 && $code === 'not_found' && $method !== 'POST') {
            return new TaskNotFoundException($status, $code, $detail, $after, $decoded);
        }
        return new TaskApiException($status, $code, $detail, $after, $decoded);
    }

    /** Retry-After as seconds: its number, or the time until its HTTP date. */
    private static function retryAfterSeconds(?string $v): ?int
    {
        if ($v === null || $v === '') {
            return null;
        }
        if (ctype_digit($v)) {
            return (int) $v;
        }
        $at = strtotime($v);
        return $at === false ? null : max(0, $at - time());
    }

    private static function excerpt(string|false $text): string
    {
        $text = trim((string) $text);
        return strlen($text) > 300 ? substr($text, 0, 300) . '...' : $text;
    }

    /** The client's curl handle: one per client (and process), so connections are reused. */
    private function handle(): \CurlHandle
    {
        $pid = getmypid();
        if ($this->curl === null || $this->curlPid !== $pid) {
            $this->curl = curl_init();
            $this->curlPid = (int) $pid;
        } else {
            curl_reset($this->curl);  // options only: the live connection stays
        }
        return $this->curl;
    }
}
