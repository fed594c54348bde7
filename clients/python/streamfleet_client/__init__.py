"""streamfleet_client: enqueue streamfleet tasks from Python, follow and cancel them (docs/task-protocol.md);
signed live-stream links for browsers (docs/live.md)."""
from .client import (CANCEL_RECORD_SCRIPT, CANCEL_RECORD_SCRIPT_SHA1, CANCEL_SCRIPT, ENQUEUE_SCRIPT,
                     ENQUEUE_SCRIPT_SHA1, CancelOutcome, CancelResult, EnqueueManyError, EnqueueResult, Task,
                     TaskClient, TaskStatus)
from .keys import CONSUMER_GROUP, TaskKeys, crc16, valid_queue_name
from .live import signed_events_link, signed_generation_stream_link, signed_stream_link

__all__ = ["CANCEL_RECORD_SCRIPT", "CANCEL_RECORD_SCRIPT_SHA1", "CANCEL_SCRIPT", "CONSUMER_GROUP", "ENQUEUE_SCRIPT",
           "ENQUEUE_SCRIPT_SHA1", "CancelOutcome", "CancelResult", "EnqueueManyError", "EnqueueResult", "Task",
           "TaskClient", "TaskKeys", "TaskStatus", "crc16", "signed_events_link", "signed_generation_stream_link",
           "signed_stream_link", "valid_queue_name"]
