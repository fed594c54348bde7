"""streamfleet_client: enqueue streamfleet tasks from Python and follow them (docs/task-protocol.md)."""
from .client import EnqueueResult, Task, TaskClient, TaskStatus
from .keys import CONSUMER_GROUP, TaskKeys, crc16, valid_queue_name

__all__ = ["CONSUMER_GROUP", "EnqueueResult", "Task", "TaskClient", "TaskKeys", "TaskStatus", "crc16",
           "valid_queue_name"]
