"""
The Redis the core talks to, built in one place from the ``REALTIME`` settings.

Two deployments:

- one Redis: ``REALTIME["REDIS_URL"]`` (``REDIS_URL``);
- Redis Sentinel: ``REALTIME["REDIS_SENTINELS"]`` (``[[host, port], ...]``, ``REDIS_SENTINELS``)
  and ``REALTIME["REDIS_SENTINEL_MASTER"]`` (the monitored master's name, ``REDIS_SENTINEL_MASTER``).
  A client asks the sentinels for the master's address whenever it opens a connection (redis-py's
  ``SentinelConnectionPool``), so after a failover the next reconnect reaches the promoted replica
  without a restart. Database 0, no password, no TLS (README "Redis high availability").

Neither set: the core keeps its state in the process's memory (one process only).
The channel layer reads the same environment in config/settings.py (channels_redis builds its own
pools, from ``sentinels`` / ``master_name`` in its ``hosts``).
"""

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.retry
import redis.sentinel
from redis.backoff import NoBackoff

from .conf import realtime_settings

__all__ = ["SENTINEL_TIMEOUT_S", "redis_client", "redis_configured", "socketio_redis_url"]

# Sentinels answer one short command each (which address is the master); a sentinel that does not
# answer within this many seconds is skipped for the next one, rather than holding up a reconnect
# for the 5 s of redis-py 8's default socket timeout. Nor is a sentinel query retried: redis-py 8
# retries a command 10 times by default, which made each reconnect wait ~4 s per sentinel that was
# down before asking the next (tests/test_redis_sentinel_settings.py); the master's client retries.
SENTINEL_TIMEOUT_S = 2


def _sentinels() -> list[tuple[str, int]]:
    return [(host, int(port)) for host, port in realtime_settings.REDIS_SENTINELS]


def redis_configured() -> bool:
    """Whether a Redis (one, or behind Sentinel) is configured; False means this process's memory."""
    return bool(realtime_settings.REDIS_URL or realtime_settings.REDIS_SENTINELS)


def redis_client(
    *, asynchronous: bool, socket_timeout: float, socket_connect_timeout: float, max_connections: int | None = None
) -> redis.Redis | redis.asyncio.Redis:
    """
    A redis-py client (``redis.asyncio.Redis`` when ``asynchronous``, else ``redis.Redis``) on the
    configured Redis: Sentinel's current master when ``REDIS_SENTINELS`` is set, else ``REDIS_URL``.
    Timeouts in seconds, for the connections to Redis itself (sentinels get ``SENTINEL_TIMEOUT_S``);
    ``max_connections``, the pool's bound (redis-py's default, 100, raises ``MaxConnectionsError``
    for the 101st command in flight).

    An asyncio client belongs to the event loop that first uses it. Raise ``ValueError`` when
    neither setting is given (check ``redis_configured()`` first); connection errors surface on
    the first command (``MasterNotFoundError``, a ``ConnectionError``, while no sentinel names a
    reachable master).
    """
    options = {"socket_timeout": socket_timeout, "socket_connect_timeout": socket_connect_timeout}
    if max_connections is not None:
        options["max_connections"] = max_connections
    if realtime_settings.REDIS_SENTINELS:
        retry = (redis.asyncio.retry.Retry if asynchronous else redis.retry.Retry)(NoBackoff(), 0)
        sentinel_options = {
            "socket_timeout": SENTINEL_TIMEOUT_S,
            "socket_connect_timeout": SENTINEL_TIMEOUT_S,
            "retry": retry,
        }
        module = redis.asyncio.sentinel if asynchronous else redis.sentinel
        sentinel = module.Sentinel(_sentinels(), sentinel_kwargs=sentinel_options)
        return sentinel.master_for(realtime_settings.REDIS_SENTINEL_MASTER, **options)
    if not realtime_settings.REDIS_URL:
        raise ValueError("No Redis configured: set REDIS_URL, or REDIS_SENTINELS and REDIS_SENTINEL_MASTER")
    module = redis.asyncio if asynchronous else redis
    return module.Redis.from_url(realtime_settings.REDIS_URL, **options)


def socketio_redis_url() -> str:
    """
    The configured Redis as python-socketio's ``AsyncRedisManager`` takes it: ``REDIS_URL``, or
    ``redis+sentinel://host:port,.../0/<master>`` (its Sentinel form, python-socketio >= 5.12);
    "" when none is configured.
    """
    if realtime_settings.REDIS_SENTINELS:
        hosts = ",".join(f"{host}:{port}" for host, port in _sentinels())
        return f"redis+sentinel://{hosts}/0/{realtime_settings.REDIS_SENTINEL_MASTER}"
    return realtime_settings.REDIS_URL
