"""Key names of the task queue: the Python twin of components/taskqueue task_keys.h (docs/task-protocol.md).

Standard mode: one stream per queue, `{prefix}:queue:{name}`, one scheduled zset `{prefix}:scheduled`.
Cluster mode: `shards` stream shards per queue, each with its scheduled zset, pause flag and cancel markers in
the shard's hash tag, `{prefix:queue:name:i}`, `{prefix:queue:name:i}:scheduled`, `{prefix:queue:name:i}:paused`,
`{prefix:queue:name:i}:cancelled`.
"""
from __future__ import annotations

import re
import secrets
from typing import List, Optional

# Queue names become key names: [a-z0-9_.-]{1,64} (ValidQueueName in components/base task_specs.cc).
_QUEUE_NAME = re.compile(r"[a-z0-9_.\-]{1,64}")

CONSUMER_GROUP = "workers"
# TASK_QUEUE_SHARDS' default with the cluster schema (components/base config.cc LoadConsumers).
DEFAULT_CLUSTER_SHARDS = 4


def valid_queue_name(name: str) -> bool:
    return _QUEUE_NAME.fullmatch(name) is not None


def crc16(data: bytes) -> int:
    """CRC16-CCITT (XMODEM: poly 0x1021, init 0), the checksum Redis Cluster hashes keys with.

    The shard of a unique task is crc16(unique_key) % shards in every language, so a duplicate enqueued from
    Python lands on the shard where the C++ or Node producer put the first one.
    """
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


class TaskKeys:
    """Every key name a producer touches, for one stream prefix and key schema."""

    def __init__(self, prefix: str = "streamfleet", cluster: bool = False, shards: Optional[int] = None) -> None:
        if not prefix:
            raise ValueError("empty key prefix")
        self.prefix = prefix
        self.cluster = cluster
        # Standard mode has exactly one stream per queue, whatever `shards` says (TaskKeys in C++ does the same).
        # Cluster mode without `shards`: the fleet's default, as the workers use without TASK_QUEUE_SHARDS; 1 here
        # would make pause() and cancel() touch shard 0 only while tasks sit on all 4.
        if shards is None:
            shards = DEFAULT_CLUSTER_SHARDS
        self.shards = max(1, shards) if cluster else 1

    def queue(self, name: str, shard: int = 0) -> str:
        if not self.cluster:
            return f"{self.prefix}:queue:{name}"
        return "{" + f"{self.prefix}:queue:{name}:{shard}" + "}"

    def queue_shards(self, name: str) -> List[str]:
        return [self.queue(name, i) for i in range(self.shards)]

    def shard_for(self, unique_key: str) -> int:
        """The shard a task goes to: by its unique key when it has one, else at random."""
        if self.shards == 1:
            return 0
        if unique_key:
            return crc16(unique_key.encode()) % self.shards
        return secrets.randbelow(self.shards)

    def scheduled_of(self, stream: str) -> str:
        return f"{stream}:scheduled" if self.cluster else self.scheduled()

    def dead_letters_of(self, stream: str) -> str:
        return f"{stream}:dlq" if self.cluster else self.dead_letters()

    def paused_flag_of(self, stream: str) -> str:
        """Cluster mode only: the flag the workers' per-shard read script checks."""
        return f"{stream}:paused"

    def cancelled_of(self, stream: str) -> str:
        """The cancel markers the workers check when they read from `stream` (cancelled() in standard mode)."""
        return f"{stream}:cancelled" if self.cluster else self.cancelled()

    def scheduled(self) -> str:
        return f"{self.prefix}:scheduled"

    def dead_letters(self) -> str:
        return f"{self.prefix}:dlq:tasks"

    def paused(self) -> str:
        """The set of paused queue names (both modes; in cluster mode the operators' list)."""
        return f"{self.prefix}:paused"

    def cancelled(self) -> str:
        """Standard mode: the ids of cancelled tasks no worker has skipped yet (zset by cancel time)."""
        return f"{self.prefix}:cancelled"

    def status(self, task_id: str) -> str:
        return f"{self.prefix}:task:{task_id}"

    def unique(self, key: str) -> str:
        return f"{self.prefix}:unique:{key}"


def new_task_id() -> str:
    """20 lowercase hex digits, the shape of the ids the C++ producers generate."""
    return secrets.token_hex(10)
