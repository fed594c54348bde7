"""TaskClient.from_env: the fleet's own environment variables and defaults (docs/CONFIGURATION.md), so a
Python producer configured like the fleet's processes writes the same keys they read."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple, Type, TypeVar
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


def _tls_kwargs(env: Dict[str, str], url_says_tls: bool) -> Dict[str, Any]:
    """REDIS_TLS (or a rediss:// REDIS_URL), REDIS_TLS_CA/CERT/KEY and REDIS_TLS_INSECURE as the fleet's
    processes read them, as redis-py connection arguments ({} without TLS). Without REDIS_TLS_CA the system's
    trust store applies; the host name is verified."""
    ca, cert, key = env.get("REDIS_TLS_CA", ""), env.get("REDIS_TLS_CERT", ""), env.get("REDIS_TLS_KEY", "")
    if not url_says_tls and not _bool(env, "REDIS_TLS"):
        if ca or cert or key:
            raise ValueError("REDIS_TLS_CA / REDIS_TLS_CERT / REDIS_TLS_KEY are set: set REDIS_TLS=true (or a "
                             "rediss:// REDIS_URL)")
        return {}
    if bool(cert) != bool(key):
        raise ValueError("REDIS_TLS_CERT and REDIS_TLS_KEY are set together")
    if env.get("REDIS_TLS_SERVER_NAME"):
        # redis-py 4.3 (Debian 12) verifies the host it connects to and has no setting for another name.
        raise ValueError("REDIS_TLS_SERVER_NAME is not supported by this client (redis-py verifies the host it "
                         "connects to): connect by the certificate's name (REDIS_HOST or REDIS_URL) instead")
    insecure = _bool(env, "REDIS_TLS_INSECURE")
    return {"ssl": True, "ssl_ca_certs": ca or None, "ssl_certfile": cert or None, "ssl_keyfile": key or None,
            "ssl_cert_reqs": "none" if insecure else "required", "ssl_check_hostname": not insecure}


def _sentinels(env: Dict[str, str]) -> List[Tuple[str, int]]:
    out = []
    for item in (s.strip() for s in env.get("REDIS_SENTINELS", "").split(",")):
        if not item:
            continue
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"REDIS_SENTINELS: {item} is not host:port")
        out.append((host, int(port)))
    return out


def _redacted(url: str) -> str:
    """The URL for an error message: whatever stands between the scheme and the last '@' (a user and password,
    however malformed) replaced."""
    if "@" not in url:
        return url
    scheme, sep, _ = url.partition("://")
    return (scheme + sep if sep else "") + "***@" + url.rpartition("@")[2]


def redis_from_env(env: Dict[str, str]) -> Any:
    """REDIS_URL (redis:// or rediss://[[user]:password@]host[:port][/db]; with REDIS_CLUSTER=true a seed list)
    or REDIS_HOST, REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD, REDIS_DB; TLS (REDIS_TLS, REDIS_TLS_CA/CERT/KEY,
    REDIS_TLS_INSECURE) and Redis Sentinel (REDIS_SENTINELS, REDIS_SENTINEL_MASTER, REDIS_SENTINEL_USERNAME/
    PASSWORD: the master is asked of the sentinels, and a failover followed, by redis-py)."""
    import redis

    url = env.get("REDIS_URL", "")
    url_says_tls = False
    if url:
        u = urlparse(url.split(",")[0])  # the first seed is enough: a cluster client discovers the rest
        if u.scheme not in ("redis", "rediss"):
            raise ValueError(f"REDIS_URL: {u.scheme}: is not redis: or rediss:")
        url_says_tls = u.scheme == "rediss"
        # urllib's own errors quote the part they could not read, which for a password with '#', '/' or '?' in
        # it (not percent-encoded) is a piece of the password ("Port could not be cast to integer value as
        # 'abc'"). Raised afresh outside the except block, so not even __context__ holds the original.
        malformed = False
        try:
            host, port = u.hostname or "127.0.0.1", u.port or 6379
            username = unquote(u.username) if u.username else None
            password = unquote(u.password) if u.password else None
            db = int(u.path.lstrip("/") or "0")
        except ValueError:
            malformed = True
        if malformed:
            raise ValueError(f"REDIS_URL {_redacted(url)} is not redis(s)://[[user]:password@]host[:port][/db] "
                             "(percent-encode '#', '/', '?' and '@' in a password)")
    else:
        host, port = env.get("REDIS_HOST", "127.0.0.1"), int(env.get("REDIS_PORT", "6379"))
        username = env.get("REDIS_USERNAME") or None
        password = env.get("REDIS_PASSWORD") or None
        db = int(env.get("REDIS_DB", "0"))
    tls = _tls_kwargs(env, url_says_tls)
    sentinels = _sentinels(env)
    cluster = _bool(env, "REDIS_CLUSTER")
    if sentinels:
        master = env.get("REDIS_SENTINEL_MASTER", "")
        if not master:
            raise ValueError("REDIS_SENTINEL_MASTER: the master name the sentinels monitor")
        if cluster:
            raise ValueError("REDIS_SENTINELS is unset with REDIS_CLUSTER=true")
        from redis.sentinel import Sentinel
        # As the fleet does: TLS to the sentinels too, and to the master they name.
        sentinel_kwargs = {"username": env.get("REDIS_SENTINEL_USERNAME") or None,
                           "password": env.get("REDIS_SENTINEL_PASSWORD") or None, **tls}
        return Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs, **tls).master_for(
            master, username=username, password=password, db=db)
    if cluster:
        if tls and tls["ssl_check_hostname"]:
            # redis-py 4.3's RedisCluster drops ssl_check_hostname for its node connections: only the chain would be
            # verified, not the name. Refused rather than verified less than the README promises.
            raise ValueError("REDIS_CLUSTER=true with TLS: this client (redis-py 4.3) cannot verify the nodes' host "
                             "names; build redis.cluster.RedisCluster yourself, or REDIS_TLS_INSECURE=true in "
                             "development")
        from redis.cluster import RedisCluster
        return RedisCluster(host=host, port=port, username=username, password=password, **tls)
    return redis.Redis(host=host, port=port, username=username, password=password, db=db, **tls)


def client_from_env(cls: Type[T], environ: Optional[Dict[str, str]] = None) -> T:
    env = dict(os.environ if environ is None else environ)
    ttl = _int(env, "TASK_RESULT_TTL", 86400, 0, 1 << 31)
    return cls(redis_from_env(env), keys_from_env(env), ttl)  # type: ignore[call-arg]
