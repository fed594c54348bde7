"""TaskClient.from_env: the fleet's own environment variables and defaults (docs/CONFIGURATION.md), so a
Python producer configured like the fleet's processes writes the same keys they read."""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Type, TypeVar
from urllib.parse import unquote, urlparse

from .keys import TaskKeys

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(env: Dict[str, str], name: str) -> bool:
    value = env.get(name, "")
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={value!r}: expected true or false")


def _int(env: Dict[str, str], name: str, default: int, low: int, high: int) -> int:
    value = env.get(name)
    if value is None or value == "":
        return default
    n = int(value)
    if not low <= n <= high:
        raise ValueError(f"{name}={value}: expected {low}..{high}")
    return n


def keys_from_env(env: Dict[str, str]) -> TaskKeys:
    """STREAMFLEET_STREAM_PREFIX, STREAMFLEET_KEY_SCHEMA (cluster by default with REDIS_CLUSTER=true) and
    TASK_QUEUE_SHARDS (4 by default with the cluster schema, else 1), as components/base config.cc reads them."""
    prefix = env.get("STREAMFLEET_STREAM_PREFIX", "streamfleet")
    redis_cluster = _bool(env, "REDIS_CLUSTER")
    schema = env.get("STREAMFLEET_KEY_SCHEMA") or ("cluster" if redis_cluster else "standard")
    if schema not in ("standard", "cluster"):
        raise ValueError(f"STREAMFLEET_KEY_SCHEMA={schema}: expected standard or cluster")
    if redis_cluster and schema == "standard":
        raise ValueError("STREAMFLEET_KEY_SCHEMA=standard with REDIS_CLUSTER=true")
    cluster = schema == "cluster"
    shards = _int(env, "TASK_QUEUE_SHARDS", 4 if cluster else 1, 1, 1024)
    if not cluster and shards != 1:
        raise ValueError("TASK_QUEUE_SHARDS must be 1 unless STREAMFLEET_KEY_SCHEMA=cluster")
    return TaskKeys(prefix, cluster, shards)


def redis_from_env(env: Dict[str, str]) -> Any:
    """REDIS_URL (redis://[[user]:password@]host[:port][/db]; with REDIS_CLUSTER=true a seed list) or
    REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD, REDIS_DB."""
    import redis

    url = env.get("REDIS_URL", "")
    if url:
        u = urlparse(url.split(",")[0])  # the first seed is enough: a cluster client discovers the rest
        host, port = u.hostname or "127.0.0.1", u.port or 6379
        username = unquote(u.username) if u.username else None
        password = unquote(u.password) if u.password else None
        db = int(u.path.lstrip("/") or "0")
    else:
        host, port = env.get("REDIS_HOST", "127.0.0.1"), int(env.get("REDIS_PORT", "6379"))
        username = env.get("REDIS_USERNAME") or None
        password = env.get("REDIS_PASSWORD") or None
        db = int(env.get("REDIS_DB", "0"))
    if _bool(env, "REDIS_CLUSTER"):
        from redis.cluster import RedisCluster
        return RedisCluster(host=host, port=port, username=username, password=password)
    return redis.Redis(host=host, port=port, username=username, password=password, db=db)


def client_from_env(cls: Type[T], environ: Optional[Dict[str, str]] = None) -> T:
    env = dict(os.environ if environ is None else environ)
    ttl = _int(env, "TASK_RESULT_TTL", 86400, 0, 1 << 31)
    return cls(redis_from_env(env), keys_from_env(env), ttl)  # type: ignore[call-arg]
