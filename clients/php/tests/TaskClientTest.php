<?php
// clients/php against a real streamfleet-ingest and a real streamfleet-queue-worker on one redis-server, started
// by tests/clients/php_client_test.sh, which passes them in the environment:
//   STREAMFLEET_TEST_URL         ingest (INGEST_TOKENS set, so the task API checks TASK_API_TOKENS)
//   STREAMFLEET_TEST_TOKEN       a token with enqueue+read scope
//   STREAMFLEET_TEST_READ_TOKEN  a token with read scope only
//   STREAMFLEET_TEST_DOWN_URL    a second ingest whose redis-server has been killed
//   STREAMFLEET_TEST_FAKE_URL    tests/fake_server.php under `php -S` (answers ingest never gives), recording
//                                every request to STREAMFLEET_TEST_FAKE_LOG
//   STREAMFLEET_TEST_CTL         streamfleetctl, and STREAMFLEET_TEST_REDIS_PORT its Redis (queues pause/resume)
// Ingest and the worker read the queues default and low; TASK_MAX_PAYLOAD_BYTES is 65536.
declare(strict_types=1);

require_once __DIR__ . '/../autoload.php';

use PHPUnit\Framework\TestCase;
use Streamfleet\CancelResult;
use Streamfleet\ConnectionException;
use Streamfleet\EnqueueResult;
use Streamfleet\TaskApiException;
use Streamfleet\TaskClient;
use Streamfleet\TaskClientInterface;
use Streamfleet\TaskNotFoundException;
use Streamfleet\TaskTooLateException;

final class TaskClientTest extends TestCase
{
    private static function env(string $name): string
    {
        $v = getenv($name);
        if ($v === false || $v === '') {
            self::fail("$name is not set: run tests/clients/php_client_test.sh BUILD_DIR");
        }
        return $v;
    }

    private static function client(?string $token = null): TaskClient
    {
        return new TaskClient(self::env('STREAMFLEET_TEST_URL'), $token ?? self::env('STREAMFLEET_TEST_TOKEN'), 5.0);
    }

    /** Polls the task's status until its state is $want or final; returns the last record. */
    private static function waitFor(TaskClient $c, string $id, string $want, float $seconds = 15.0): array
    {
        $deadline = microtime(true) + $seconds;
        do {
            $s = $c->status($id);
            self::assertNotNull($s, "task $id has no status record");
            if ($s['state'] === $want || in_array($s['state'], ['succeeded', 'dead', 'cancelled'], true)) {
                break;
            }
            usleep(50000);
        } while (microtime(true) < $deadline);
        self::assertSame($want, $s['state'], "task $id: " . json_encode($s));
        return $s;
    }

    /** Runs `streamfleetctl ARGS...` against the fleet's Redis and returns its output; fails the test when it fails. */
    private static function ctl(string ...$args): string
    {
        $cmd = 'REDIS_PORT=' . escapeshellarg(self::env('STREAMFLEET_TEST_REDIS_PORT')) . ' LOG_LEVEL=warn '
            . escapeshellarg(self::env('STREAMFLEET_TEST_CTL')) . ' ' . implode(' ', array_map('escapeshellarg', $args))
            . ' 2>&1';
        exec($cmd, $out, $rc);
        self::assertSame(0, $rc, "streamfleetctl " . implode(' ', $args) . ': ' . implode("\n", $out));
        return implode("\n", $out);
    }

    /** Calls $fn, which must throw $class; returns the exception. */
    private static function expectThrown(string $class, callable $fn): \Throwable
    {
        try {
            $fn();
        } catch (\Throwable $e) {
            self::assertInstanceOf($class, $e, get_class($e) . ': ' . $e->getMessage());
            return $e;
        }
        self::fail("no $class was thrown");
    }

    /** The requests fake_server.php got since $from lines. */
    private static function fakeRequests(int $from = 0): array
    {
        $lines = file(self::env('STREAMFLEET_TEST_FAKE_LOG'), FILE_IGNORE_NEW_LINES) ?: [];
        return array_map(fn ($l) => json_decode($l, true), array_slice($lines, $from));
    }

    private static function fakeCount(): int
    {
        return count(self::fakeRequests());
    }

    public function testAnAppCanDoubleTheClientThroughItsInterface(): void
    {
        // TaskClient is final (PHPUnit refuses to mock it): apps bind and mock TaskClientInterface instead.
        $this->assertInstanceOf(TaskClientInterface::class, new TaskClient(self::env('STREAMFLEET_TEST_URL')));
        $tasks = $this->createMock(TaskClientInterface::class);
        $tasks->expects($this->once())->method('enqueue')->with('report.build')
            ->willReturn(new EnqueueResult('t-1', 'pending', false));
        $this->assertSame('t-1', $tasks->enqueue('report.build', ['user_id' => 7])->taskId);
    }

    public function testAnEnqueuedNoopTaskRunsAndItsStatusHasAttemptsAndTimestamps(): void
    {
        $c = self::client();
        $before = (int) (microtime(true) * 1000);
        $r = $c->enqueue('noop', ['hello' => 'world']);
        $this->assertInstanceOf(EnqueueResult::class, $r);
        $this->assertNotSame('', $r->taskId);
        $this->assertSame('pending', $r->state);
        $this->assertFalse($r->duplicate);
        $this->assertFalse($r->isScheduled());

        $s = self::waitFor($c, $r->taskId, 'succeeded');
        $this->assertSame($r->taskId, $s['task_id']);
        $this->assertSame('noop', $s['type']);
        $this->assertSame('default', $s['queue']);
        $this->assertSame(1, $s['attempts']);
        foreach (['enqueued_at_ms', 'started_at_ms', 'finished_at_ms'] as $k) {
            $this->assertIsInt($s[$k], $k);
        }
        $this->assertGreaterThanOrEqual($before - 1000, $s['enqueued_at_ms']);
        $this->assertLessThanOrEqual($s['started_at_ms'], $s['enqueued_at_ms']);
        $this->assertLessThanOrEqual($s['finished_at_ms'], $s['started_at_ms']);

        $low = $c->enqueue('noop', null, ['queue' => 'low']);
        $this->assertSame('low', self::waitFor($c, $low->taskId, 'succeeded')['queue']);
    }

    public function testOneConnectionServesEveryCall(): void
    {
        $c = self::client();
        $id = $c->enqueue('noop')->taskId;
        $c->status($id);
        $c->enqueueMany([['type' => 'noop']]);
        $c->status($id);
        $this->assertSame(1, $c->connectionsOpened(), 'keep-alive: one curl handle, one connection');
        $copy = clone $c;
        $copy->status($id);
        $this->assertSame(2, $copy->connectionsOpened(), 'a clone opens its own connection');
    }

    public function testDelayedTasksStayScheduledAndDoNotRun(): void
    {
        $c = self::client();
        $now = (int) (microtime(true) * 1000);
        $delayed = $c->enqueue('noop', ['later' => true], ['delay' => 60]);
        $this->assertSame('scheduled', $delayed->state);
        $this->assertTrue($delayed->isScheduled());
        $text = $c->enqueue('noop', null, ['delay' => '90s', 'queue' => 'low']);
        $this->assertSame('scheduled', $text->state);
        $at = new \DateTimeImmutable('+1 hour', new \DateTimeZone('America/New_York'));
        $timed = $c->enqueue('noop', null, ['runAt' => $at]);
        $this->assertSame('scheduled', $timed->state);
        $unix = $c->enqueue('noop', null, ['runAt' => time() + 7200]);
        $this->assertSame('scheduled', $unix->state);

        // A task enqueued after them runs: the worker is busy polling, and still leaves them alone.
        self::waitFor($c, $c->enqueue('noop')->taskId, 'succeeded');
        foreach ([$delayed, $text, $timed, $unix] as $r) {
            $s = $c->status($r->taskId);
            $this->assertSame('scheduled', $s['state'], json_encode($s));
            $this->assertArrayNotHasKey('started_at_ms', $s);
            $this->assertSame(0, $s['attempts']);
        }
        // When they will run, as the scheduled set says (the status record of a delayed task has no run_at_ms).
        $runAt = [];
        foreach (json_decode(self::ctl('--json', 'tasks', 'scheduled'), true, 512, JSON_THROW_ON_ERROR) as $t) {
            $runAt[$t['id']] = $t['run_at_ms'];
        }
        $this->assertEqualsWithDelta($now + 60000, $runAt[$delayed->taskId] ?? 0, 5000);
        $this->assertEqualsWithDelta($now + 90000, $runAt[$text->taskId] ?? 0, 5000);
        $this->assertSame((int) $at->format('Uv'), $runAt[$timed->taskId] ?? 0, 'runAt to the millisecond');
        $this->assertEqualsWithDelta($now + 7200000, $runAt[$unix->taskId] ?? 0, 5000);

        // Cancelled, so they do not run an hour from now in a fleet that outlives the test.
        foreach ([$delayed, $text, $timed, $unix] as $r) {
            $this->assertSame('scheduled', $c->cancel($r->taskId)->previousState);
        }
    }

    public function testAUniqueKeyGivesTheHoldersIdBack(): void
    {
        $c = self::client();
        $key = 'php-report-' . bin2hex(random_bytes(6));
        $first = $c->enqueue('noop', ['report' => 7], ['uniqueKey' => $key, 'uniqueFor' => 600]);
        $this->assertSame('pending', $first->state);
        $this->assertFalse($first->duplicate);
        $second = $c->enqueue('noop', ['report' => 7], ['uniqueKey' => $key, 'uniqueFor' => 600]);
        $this->assertTrue($second->duplicate);
        $this->assertSame('duplicate', $second->state);
        $this->assertSame($first->taskId, $second->taskId, "the holder's id");
        self::waitFor($c, $first->taskId, 'succeeded');
    }

    public function testABatchRunsEveryTaskOrIsRefusedWhole(): void
    {
        $c = self::client();
        $tasks = [];
        for ($i = 0; $i < 5; $i++) {
            $tasks[] = ['type' => 'noop', 'payload' => ['i' => $i]];
        }
        $tasks[] = ['type' => 'noop', 'queue' => 'low'];
        $tasks[] = ['type' => 'noop', 'uniqueKey' => 'php-batch-' . bin2hex(random_bytes(6))];
        $results = $c->enqueueMany($tasks);
        $this->assertCount(7, $results);
        $ids = array_map(fn (EnqueueResult $r) => $r->taskId, $results);
        $this->assertCount(7, array_unique($ids));
        foreach ($results as $r) {
            $this->assertSame('pending', $r->state);
            self::waitFor($c, $r->taskId, 'succeeded');
        }

        $e = self::expectThrown(TaskApiException::class, fn () => $c->enqueueMany([
            ['type' => 'noop'],
            ['type' => 'noop', 'queue' => 'critical'],
        ]));
        $this->assertSame(400, $e->status);
        $this->assertSame('unknown_queue', $e->errorCode);
        $this->assertStringContainsString('tasks[1]', $e->detail);

        self::expectThrown(\InvalidArgumentException::class, fn () => $c->enqueueMany([]));
        self::expectThrown(\InvalidArgumentException::class, fn () => $c->enqueueMany([['payload' => []]]));
        self::expectThrown(\InvalidArgumentException::class,
            fn () => $c->enqueueMany(array_fill(0, TaskClient::MAX_BATCH + 1, ['type' => 'noop'])));
    }

    public function testACancelledTaskNeverRunsWhileTheOneAfterItDoes(): void
    {
        $c = self::client();
        self::ctl('queues', 'pause', 'default');
        try {
            // A blocking read a worker slot started before the pause may still include default: it ends within
            // its BLOCK time (500 ms, queue-worker/worker_service.cc), and every later read leaves default alone.
            usleep(1000000);
            $drop = $c->enqueue('noop', ['drop' => true]);
            $this->assertSame('pending', $drop->state);
            $cancelled = $c->cancel($drop->taskId);
            $this->assertInstanceOf(CancelResult::class, $cancelled);
            $this->assertSame($drop->taskId, $cancelled->taskId);
            $this->assertSame('cancelled', $cancelled->state);
            $this->assertSame('pending', $cancelled->previousState);
            $again = $c->cancel($drop->taskId);
            $this->assertSame('cancelled', $again->previousState, 'cancelling again changes nothing');
        } finally {
            self::ctl('queues', 'resume', 'default');
        }
        $keep = $c->enqueue('noop', ['keep' => true]);
        self::waitFor($c, $keep->taskId, 'succeeded');
        $s = $c->status($drop->taskId);
        $this->assertSame('cancelled', $s['state'], json_encode($s));
        $this->assertIsInt($s['cancelled_at_ms']);
        $this->assertArrayNotHasKey('started_at_ms', $s, 'it never ran');
    }

    public function testCancellingAFinishedTaskIsTooLateAndAnUnknownOneIsNotFound(): void
    {
        $c = self::client();
        $id = $c->enqueue('noop')->taskId;
        self::waitFor($c, $id, 'succeeded');
        $e = self::expectThrown(TaskTooLateException::class, fn () => $c->cancel($id));
        $this->assertInstanceOf(TaskApiException::class, $e);
        $this->assertSame(409, $e->status);
        $this->assertSame('too_late', $e->errorCode);
        $this->assertSame('succeeded', $e->state);
        $this->assertFalse($e->isRetryable());
        $this->assertSame('succeeded', $c->status($id)['state']);

        $missing = 'php-no-such-task-' . bin2hex(random_bytes(4));
        $e = self::expectThrown(TaskNotFoundException::class, fn () => $c->cancel($missing));
        $this->assertSame(404, $e->status);
        $this->assertSame('not_found', $e->errorCode);
        $this->assertNull($c->status($missing));

        // A base URL that misses the task API (a path prefix a proxy would strip, here sent to ingest itself):
        // ingest's own 404 for a route it does not have is not "no such task". status() returned null and
        // cancel() said not found, for every id.
        $astray = new TaskClient(self::env('STREAMFLEET_TEST_URL') . '/streamfleet', self::env('STREAMFLEET_TEST_TOKEN'), 5.0);
        $e = self::expectThrown(TaskApiException::class, fn () => $astray->status($id));
        $this->assertNotInstanceOf(TaskNotFoundException::class, $e);
        $this->assertSame(404, $e->status);
        $this->assertSame('no_route', $e->errorCode);
        $e = self::expectThrown(TaskApiException::class, fn () => $astray->cancel($id));
        $this->assertNotInstanceOf(TaskNotFoundException::class, $e);
    }

    public function testRefusedTasksThrowTheServersErrorCodeAndDetail(): void
    {
        $c = self::client();
        $e = self::expectThrown(TaskApiException::class, fn () => $c->enqueue('noop', [], ['queue' => 'critical']));
        $this->assertSame(400, $e->status);
        $this->assertSame('unknown_queue', $e->errorCode);
        $this->assertStringContainsString('critical', $e->detail);
        $this->assertStringContainsString('unknown_queue', $e->getMessage());
        $this->assertSame(400, $e->getCode());
        $this->assertNull($e->retryAfter);
        $this->assertFalse($e->isRetryable());

        $e = self::expectThrown(TaskApiException::class, fn () => $c->enqueue('noop', [], ['queue' => 'Bad Name']));
        $this->assertSame('invalid_queue', $e->errorCode);
        $e = self::expectThrown(TaskApiException::class,
            fn () => $c->enqueue('noop', ['blob' => str_repeat('x', 70000)]));
        $this->assertSame(413, $e->status);
        $this->assertSame('payload_too_large', $e->errorCode);
        $e = self::expectThrown(TaskApiException::class,
            fn () => $c->enqueue('noop', null, ['delay' => 5, 'runAt' => time() + 60]));
        $this->assertSame('invalid_task', $e->errorCode);
        $e = self::expectThrown(TaskApiException::class, fn () => $c->enqueue('noop', null, ['delay' => 'soon']));
        $this->assertSame('invalid_task', $e->errorCode);
        $this->assertStringContainsString('delay', $e->detail);

        // Caught before anything is sent.
        self::expectThrown(\InvalidArgumentException::class, fn () => $c->enqueue('noop', null, ['unique_key' => 'x']));
        self::expectThrown(\InvalidArgumentException::class, fn () => $c->enqueue(''));
        self::expectThrown(\InvalidArgumentException::class, fn () => $c->enqueue('noop', ['bad' => "\xff"]));
        self::expectThrown(\InvalidArgumentException::class, fn () => new TaskClient('ingest:8080'));
    }

    public function testTokensNeedTheirScope(): void
    {
        $reader = self::client(self::env('STREAMFLEET_TEST_READ_TOKEN'));
        $e = self::expectThrown(TaskApiException::class, fn () => $reader->enqueue('noop'));
        $this->assertSame(403, $e->status);
        $this->assertSame('forbidden', $e->errorCode);
        $this->assertStringContainsString('enqueue', $e->detail);

        $id = self::client()->enqueue('noop')->taskId;
        $this->assertSame($id, $reader->status($id)['task_id'], 'read scope reads');
        $this->assertSame(403, self::expectThrown(TaskApiException::class, fn () => $reader->cancel($id))->status);

        $anonymous = new TaskClient(self::env('STREAMFLEET_TEST_URL'));
        $e = self::expectThrown(TaskApiException::class, fn () => $anonymous->enqueue('noop'));
        $this->assertSame(401, $e->status);
        $this->assertSame('unauthorized', $e->errorCode);
        $e = self::expectThrown(TaskApiException::class, fn () => self::client('not-a-token')->status($id));
        $this->assertSame(401, $e->status);
    }

    public function testRedisDownIs503WithRetryAfter(): void
    {
        $c = new TaskClient(self::env('STREAMFLEET_TEST_DOWN_URL'), self::env('STREAMFLEET_TEST_TOKEN'), 5.0);
        $e = self::expectThrown(TaskApiException::class, fn () => $c->enqueue('noop'));
        $this->assertSame(503, $e->status);
        $this->assertSame('redis_unavailable', $e->errorCode);
        $this->assertSame(1, $e->retryAfter);
        $this->assertTrue($e->isRetryable());
        $e = self::expectThrown(TaskApiException::class, fn () => $c->status('any-id'));
        $this->assertSame(503, $e->status, 'not a null "no such task"');
        $this->assertSame(1, $e->retryAfter);
        $this->assertSame(503, self::expectThrown(TaskApiException::class, fn () => $c->cancel('any-id'))->status);
    }

    public function testNoAnswerIsAConnectionException(): void
    {
        $nobody = new TaskClient('http://127.0.0.1:1');
        $e = self::expectThrown(ConnectionException::class, fn () => $nobody->enqueue('noop'));
        $this->assertSame(0, $e->status);
        $this->assertSame('connection_failed', $e->errorCode);
        $this->assertTrue($e->isRetryable());

        $slow = new TaskClient(self::env('STREAMFLEET_TEST_FAKE_URL') . '/slow', null, 0.3);
        $e = self::expectThrown(ConnectionException::class, fn () => $slow->enqueue('noop'));
        $this->assertSame('timeout', $e->errorCode);
    }

    public function testNoAnswerNamesTheUrlWithoutItsPassword(): void
    {
        // A base URL may carry user:password@ (curl sends it as Basic auth, for a proxy in front of ingest): the
        // exception, which apps log, names the request without them.
        $nobody = new TaskClient('http://app:s3cret-pw@127.0.0.1:1/prefix');
        $e = self::expectThrown(ConnectionException::class, fn () => $nobody->enqueue('noop'));
        $this->assertStringContainsString('POST http://***@127.0.0.1:1/prefix/v1/tasks', $e->getMessage());
        foreach ([$e->getMessage(), $e->detail, (string) $e] as $text) {
            $this->assertStringNotContainsString('s3cret-pw', $text);
            $this->assertStringNotContainsString('app:', $text);
        }
        $bad = self::expectThrown(\InvalidArgumentException::class, fn () => new TaskClient('http://app:s3c#ret@h'));
        $this->assertStringNotContainsString('s3c', $bad->getMessage());
    }

    public function testWhatIsSentOnTheWire(): void
    {
        $from = self::fakeCount();
        $c = new TaskClient(self::env('STREAMFLEET_TEST_FAKE_URL') . '/echo/', 'tok-1');
        $c->enqueue('noop');
        $c->enqueue('noop', []);
        $c->enqueue('mail.send', ['to' => 'a@b.c', 'tags' => [], 'n' => 1.0], [
            'queue' => 'low', 'uniqueKey' => 'u-1', 'uniqueFor' => new \DateInterval('PT10M'), 'delay' => null,
        ]);
        $c->enqueue('noop', new \ArrayObject(), ['runAt' => new \DateTimeImmutable('2030-01-02 03:04:05.678+02:00')]);
        $c->enqueue('noop', null, ['delay' => '30s']);
        $batch = $c->enqueueMany([['type' => 'noop'], ['type' => 'noop', 'payload' => [1, 2], 'delay' => 5]]);
        $this->assertSame(['fake-0', 'fake-1'], array_map(fn (EnqueueResult $r) => $r->taskId, $batch));
        $this->assertSame('cancelled', $c->cancel('a b/c')->state);
        $this->assertSame('pending', $c->status('x')['state']);

        $got = self::fakeRequests($from);
        $this->assertCount(8, $got);
        $bodies = array_map(fn ($r) => $r['body'], $got);
        $this->assertSame('{"type":"noop","payload":{}}', $bodies[0], 'no payload is the empty object');
        $this->assertSame('{"type":"noop","payload":{}}', $bodies[1], 'an empty array is the empty object, not []');
        $this->assertSame('{"type":"mail.send","payload":{"to":"a@b.c","tags":[],"n":1.0},"queue":"low",'
            . '"unique_key":"u-1","unique_for":600}', $bodies[2]);
        $this->assertSame('{"type":"noop","payload":{},"run_at":"2030-01-02T01:04:05.678Z"}', $bodies[3]);
        $this->assertSame('{"type":"noop","payload":{},"delay":"30s"}', $bodies[4]);
        $this->assertSame('{"tasks":[{"type":"noop","payload":{}},{"type":"noop","payload":[1,2],"delay":5}]}',
            $bodies[5]);
        $this->assertSame(['POST', '/echo/v1/tasks'], [$got[0]['method'], $got[0]['uri']]);
        $this->assertSame(['POST', '/echo/v1/tasks:batch'], [$got[5]['method'], $got[5]['uri']]);
        $this->assertSame(['DELETE', '/echo/v1/tasks/a%20b%2Fc'], [$got[6]['method'], $got[6]['uri']]);
        $this->assertSame(['GET', '/echo/v1/tasks/x'], [$got[7]['method'], $got[7]['uri']]);
        $h = array_change_key_case($got[0]['headers'], CASE_LOWER);
        $this->assertSame('Bearer tok-1', $h['authorization']);
        $this->assertSame('application/json', $h['content-type']);
        $this->assertArrayNotHasKey('content-type', array_change_key_case($got[7]['headers'], CASE_LOWER));
    }

    public function testAnswersThatAreNotTheTaskApisAreErrorsToo(): void
    {
        $base = self::env('STREAMFLEET_TEST_FAKE_URL');
        $e = self::expectThrown(TaskApiException::class, fn () => (new TaskClient("$base/proxy502"))->enqueue('noop'));
        $this->assertSame(502, $e->status);
        $this->assertSame('http_502', $e->errorCode);
        $this->assertStringContainsString('Bad Gateway', $e->detail);
        $this->assertTrue($e->isRetryable());

        $e = self::expectThrown(TaskApiException::class, fn () => (new TaskClient("$base/busy"))->enqueue('noop'));
        $this->assertSame('redis_unavailable', $e->errorCode);
        $this->assertGreaterThanOrEqual(100, $e->retryAfter, 'Retry-After as an HTTP date');
        $this->assertLessThanOrEqual(121, $e->retryAfter);

        $e = self::expectThrown(TaskApiException::class, fn () => (new TaskClient("$base/missing"))->status('abc'));
        $this->assertNotInstanceOf(TaskNotFoundException::class, $e);
        $this->assertSame('http_404', $e->errorCode, 'a 404 page is not "no such task"');

        $e = self::expectThrown(TaskApiException::class, fn () => (new TaskClient("$base/notjson"))->enqueue('noop'));
        $this->assertSame(200, $e->status);
        $this->assertSame('invalid_response', $e->errorCode);
    }
}
