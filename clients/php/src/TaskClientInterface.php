<?php
declare(strict_types=1);

namespace Streamfleet;

/**
 * What an application calls on a task client: TaskClient implements it. Type-hint and bind this interface so
 * that an app's own tests can double it (TaskClient is final: PHPUnit's createMock and Mockery refuse it, and
 * it calls curl directly, where Laravel's Http::fake() does not reach).
 */
interface TaskClientInterface
{
    /** @see TaskClient::enqueue() */
    public function enqueue(string $type, array|object|null $payload = null, array $options = []): EnqueueResult;

    /**
     * @see TaskClient::enqueueMany()
     * @return EnqueueResult[]
     */
    public function enqueueMany(array $tasks): array;

    /** @see TaskClient::status() */
    public function status(string $id): ?array;

    /** @see TaskClient::cancel() */
    public function cancel(string $id): CancelResult;
}
