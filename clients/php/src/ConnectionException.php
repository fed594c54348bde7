<?php
declare(strict_types=1);

namespace Streamfleet;

/**
 * No answer from ingest: it could not be reached ("connection_failed") or did not answer within the client's
 * timeout ("timeout"). status is 0; detail is curl's message and the request ("POST http://***@host/v1/tasks": a
 * user and password in the base URL are left out). After a timeout on an enqueue the task may or may not have been
 * enqueued.
 */
class ConnectionException extends TaskApiException
{
}
