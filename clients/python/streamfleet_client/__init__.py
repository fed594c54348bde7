"""streamfleet_client: enqueue streamfleet tasks from Python, follow and cancel them (docs/task-protocol.md)."""
from .client import CANCEL_SCRIPT, CancelOutcome, CancelResult, EnqueueResult, Task, TaskClient, TaskStatus
from .keys import CONSUMER_GROUP, TaskKeys, crc16, valid_queue_name

__all__ = ["CANCEL_SCRIPT", "CONSUMER_GROUP", "CancelOutcome", "CancelResult", "EnqueueResult", "Task", "TaskClient",
           "TaskKeys", "TaskStatus", "crc16", "valid_queue_name"]
