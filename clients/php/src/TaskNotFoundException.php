<?php
declare(strict_types=1);

namespace Streamfleet;

/**
 * 404 not_found from cancel(): no such task, or its status record expired (TASK_RESULT_TTL). status() returns
 * null instead of throwing this.
 */
class TaskNotFoundException extends TaskApiException
{
}
