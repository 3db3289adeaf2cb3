"""
The connection registry: every authenticated connection of every server process, with presence.

Seed 003 kept connection records in Redis (connected_at, ip, user agent, 24 h expiry) and each
user's online state. Here a record expires ``REALTIME["REGISTRY_TTL_S"]`` after its process last
refreshed it (every ``REGISTRY_REFRESH_S``), so a process that crashes leaves nothing stale for
long: a periodic sweep (every ``PRESENCE_SWEEP_S``, on every process, atomic in Redis) reports
each user whose last connection expired as offline exactly once.

Two stores with one interface: ``RedisConnectionRegistry`` (a Redis configured: ``REALTIME["REDIS_URL"]``
or ``REDIS_SENTINELS``, realtime/redis_client.py; several processes) and ``LocalConnectionRegistry``
(this process's memory; development without Redis and in-memory-layer tests). Writes are async
(the event loop's connections); reads are sync (views, the admin and handlers run in threads).

Redis keys under ``REALTIME["KEY_PREFIX"]`` (one Redis, no cluster: the scripts touch keys they
compute):

- ``<p>:conn:<connection_id>``: hash of a ``ConnectionRecord``, with a TTL;
- ``<p>:user:<user_id>:conns``: sorted set connection_id -> expiry (epoch ms);
- ``<p>:online``: sorted set user_id -> latest expiry of the user's connections;
- ``<p>:lastseen``: hash user_id -> epoch ms of the user's last disconnect;
- ``<p>:connect:<ip>:<minute>`` / ``<p>:connect:<ip>:s:<second>``: new-connection counters of one
  client IP, for one minute and one second;
- ``<p>:procs`` / ``<p>:proc:<process_id>``: live processes and their stats snapshots (JSON).
"""

import asyncio
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import orjson
import redis
import redis.asyncio
from django.core.signals import setting_changed

from realtime.conf import realtime_settings
from realtime.redis_client import redis_client, redis_configured

from .coalesce import Coalescer


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class ConnectionRecord:
    """One open authenticated connection; ``connected_at`` in epoch ms; ``process`` a ServerProcess id."""

    connection_id: str
    user_id: int
    username: str
    ip: str
    user_agent: str
    connected_at: int
    process: str


# The operations both stores implement (async writes from the event loop, sync reads):
#   register(record) -> Registered
#   unregister(record, grace_s=0) -> last_seen epoch ms when it was the user's last connection,
#   else None; with ``grace_s``, the user's last connection leaves them online that many seconds
#   more (a restart's reconnect then announces nothing; the sweep says offline if none came)
#   refresh(records): extend the records' expiry (their process is alive)
#   sweep() -> [(user_id, last_seen)] whose connections all expired, each reported once
#   count_connect(ip) -> (new connections from ``ip`` in the current second, in the current
#   minute), this one included
#   publish_process(process_id, snapshot, ttl_s) / remove_process(process_id) / processes()
#   online_user_ids(), connections_of(user_id), connection(connection_id), presence(user_ids), ping(), aclose()


@dataclass(frozen=True)
class Registered:
    """``register``'s answer: the user's open connections now (this one included), and whether it came online."""

    user_connections: int
    came_online: bool


class LocalConnectionRegistry:
    """The registry in this process's memory (thread-safe: reads come from worker threads)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._records: dict[str, tuple[ConnectionRecord, int]] = {}  # id -> (record, expiry ms)
        self._last_seen: dict[int, int] = {}
        self._connects: dict[tuple[str, int], int] = {}
        self._processes: dict[str, tuple[dict, int]] = {}

    def _live(self, user_id: int, now: int) -> list[ConnectionRecord]:
        return [r for r, exp in self._records.values() if r.user_id == user_id and exp > now]

    async def register(self, record: ConnectionRecord) -> Registered:
        now = _now_ms()
        with self._lock:
            before = len(self._live(record.user_id, now))
            self._records[record.connection_id] = (record, now + realtime_settings.REGISTRY_TTL_S * 1000)
        return Registered(before + 1, before == 0)

    async def unregister(self, record: ConnectionRecord) -> int | None:
        now = _now_ms()
        with self._lock:
            if self._records.pop(record.connection_id, None) is None or self._live(record.user_id, now):
                return None
            self._last_seen[record.user_id] = now
            return now

    async def unregister_many(self, records: list[ConnectionRecord], grace_s: float) -> list[tuple[int, int]]:
        # No grace here: this store dies with its process, the one that drains.
        gone = [(record.user_id, await self.unregister(record)) for record in records]
        return [(user_id, last_seen) for user_id, last_seen in gone if last_seen is not None]

    async def refresh(self, records: list[ConnectionRecord]) -> None:
        expiry = _now_ms() + realtime_settings.REGISTRY_TTL_S * 1000
        with self._lock:
            for record in records:
                self._records[record.connection_id] = (record, expiry)

    async def sweep(self) -> list[tuple[int, int]]:
        now = _now_ms()
        with self._lock:
            expired = {r.user_id for r, exp in self._records.values() if exp <= now}
            self._records = {cid: (r, exp) for cid, (r, exp) in self._records.items() if exp > now}
            gone = sorted(uid for uid in expired if not self._live(uid, now))
            for uid in gone:
                self._last_seen[uid] = now
        return [(uid, now) for uid in gone]

    async def count_connect(self, ip: str) -> tuple[int, int]:
        now = time.time()
        second, minute = int(now), int(now // 60)
        with self._lock:
            self._connects = {k: v for k, v in self._connects.items() if k[2] >= (minute if k[1] == 60 else second)}
            for window, start in ((1, second), (60, minute)):
                self._connects[(ip, window, start)] = self._connects.get((ip, window, start), 0) + 1
            return self._connects[(ip, 1, second)], self._connects[(ip, 60, minute)]

    async def publish_process(self, process_id: str, snapshot: dict, ttl_s: float) -> None:
        with self._lock:
            self._processes[process_id] = (snapshot, _now_ms() + int(ttl_s * 1000))

    async def remove_process(self, process_id: str) -> None:
        with self._lock:
            self._processes.pop(process_id, None)

    async def aclose(self) -> None:
        """Nothing to close; part of the interface."""

    def ping(self) -> None:
        """Always answers: the store is this process's memory."""

    # -- reads (sync) ----------------------------------------------------------------------

    def online_user_ids(self) -> list[int]:
        now = _now_ms()
        with self._lock:
            return sorted({r.user_id for r, exp in self._records.values() if exp > now})

    def connections_of(self, user_id: int) -> list[ConnectionRecord]:
        with self._lock:
            return sorted(self._live(user_id, _now_ms()), key=lambda r: r.connected_at)

    def connection(self, connection_id: str) -> ConnectionRecord | None:
        """The record of open connection ``connection_id``, or None (closed, expired, never seen)."""
        with self._lock:
            record, expiry = self._records.get(connection_id, (None, 0))
        return record if expiry > _now_ms() else None

    def presence(self, user_ids: list[int]) -> dict[int, dict]:
        now = _now_ms()
        with self._lock:
            online = {r.user_id for r, exp in self._records.values() if exp > now}
            return {uid: {"online": uid in online, "last_seen": self._last_seen.get(uid)} for uid in user_ids}

    def processes(self) -> list[dict]:
        now = _now_ms()
        with self._lock:
            return [snapshot for snapshot, exp in self._processes.values() if exp > now]


# KEYS: conn, user conns, online. ARGV: now, expiry, ttl_s, connection_id, user_id, field, value, ...
# Came online: no other live connection, and not online by a drain's grace (unregister).
_REGISTER = """
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local before = redis.call('ZCARD', KEYS[2])
local online_until = redis.call('ZSCORE', KEYS[3], ARGV[5])
local graced = online_until and tonumber(online_until) > tonumber(ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], 'GT', ARGV[2], ARGV[5])
return {before + 1, (before == 0 and not graced) and 1 or 0}
"""

# KEYS: conn, user conns, online, lastseen. ARGV: now, connection_id, user_id. Returns 1 exactly
# once per offline transition (whoever removes the user from `online`).
_UNREGISTER = """
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[2]) > 0 then return 0 end
local removed = redis.call('ZREM', KEYS[3], ARGV[3])
if removed == 1 then redis.call('HSET', KEYS[4], ARGV[3], ARGV[1]) end
return removed
"""

# The connections a drain closed, together (unregister_many). KEYS: online, lastseen. ARGV: now,
# online until (epoch ms; 0: no grace), prefix, JSON [[connection_id, user_id], ...]. Returns the
# user ids that went offline; with a grace, a user left with no connection keeps their place in
# `online` until its end instead (the sweep removes them then, unless a connection registered
# meanwhile).
_UNREGISTER_MANY = """
local now, online_until, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local gone = {}
for _, record in ipairs(cjson.decode(ARGV[4])) do
  local conns = prefix .. ':user:' .. record[2] .. ':conns'
  redis.call('DEL', prefix .. ':conn:' .. record[1])
  redis.call('ZREM', conns, record[1])
  redis.call('ZREMRANGEBYSCORE', conns, '-inf', now)
  if redis.call('ZCARD', conns) == 0 then
    if online_until > 0 then
      redis.call('ZADD', KEYS[1], 'XX', online_until, record[2])
    elseif redis.call('ZREM', KEYS[1], record[2]) == 1 then
      redis.call('HSET', KEYS[2], record[2], now)
      table.insert(gone, record[2])
    end
  end
end
return gone
"""

# KEYS: online, lastseen. ARGV: now, key prefix. Returns the user ids that went offline.
_SWEEP = """
local gone = {}
for _, uid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  local conns = ARGV[2] .. ':user:' .. uid .. ':conns'
  redis.call('ZREMRANGEBYSCORE', conns, '-inf', ARGV[1])
  local latest = redis.call('ZRANGE', conns, -1, -1, 'WITHSCORES')
  if #latest == 0 then
    redis.call('ZREM', KEYS[1], uid)
    redis.call('HSET', KEYS[2], uid, ARGV[1])
    table.insert(gone, uid)
  else
    redis.call('ZADD', KEYS[1], latest[2], uid)
  end
end
return gone
"""


# KEYS: this second's and this minute's counters of one address. Returns both counts.
_COUNT_CONNECT = """
local this_second = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], 2)
local this_minute = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], 60)
return {this_second, this_minute}
"""


# Extend the TTL of one process's records; restore any that Redis lost (a restart without
# persistence). One script per REFRESH_CHUNK records: as a pipeline of five commands per record,
# redis-py spent 136 ms of the event loop on 1,000 connections (bench/maintenance.py).
# KEYS[1]: <p>:online. ARGV: TTL (s), expiry (epoch ms), prefix, JSON [[connection_id, user_id,
# field, value, ...], ...].
_REFRESH = """
local ttl, expiry, prefix = ARGV[1], ARGV[2], ARGV[3]
for _, record in ipairs(cjson.decode(ARGV[4])) do
  local conn = prefix .. ':conn:' .. record[1]
  if redis.call('EXPIRE', conn, ttl) == 0 then
    redis.call('HSET', conn, unpack(record, 3))
    redis.call('EXPIRE', conn, ttl)
  end
  local conns = prefix .. ':user:' .. record[2] .. ':conns'
  redis.call('ZADD', conns, expiry, record[1])
  redis.call('EXPIRE', conns, ttl)
  redis.call('ZADD', KEYS[1], 'GT', expiry, record[2])
end
"""
# Records per refresh script: Redis runs one script at a time, so a chunk blocks it ~3 ms.
REFRESH_CHUNK = 1000
# Commands per coalesced pipeline: a hundred connects' (MAX_HANDSHAKES_IN_PROGRESS) fit in one.
COMMANDS_PER_PIPELINE = 200


def _record(fields: dict[bytes, bytes]) -> ConnectionRecord:
    """A ``ConnectionRecord`` from its Redis hash."""
    values = {k.decode(): v.decode() for k, v in fields.items()}
    values["user_id"] = int(values["user_id"])
    values["connected_at"] = int(values["connected_at"])
    return ConnectionRecord(**values)


class RedisConnectionRegistry:
    """
    The registry in Redis, shared by every process (see the module docstring for the keys); its
    clients come from ``realtime.redis_client``, so under Sentinel they follow a failover.
    """

    def __init__(self, prefix: str):
        self.prefix = prefix
        # redis.asyncio clients belong to one event loop; tests run several loops in turn.
        self._async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._sync_client: redis.Redis | None = None
        # The connects' and disconnects' commands (register, unregister, count_connect), one
        # pipeline for those issued while the previous one is in flight (realtime.delivery.coalesce).
        self._commands: Coalescer[tuple, Any] = Coalescer(
            self._pipeline, name="registry", max_batch=COMMANDS_PER_PIPELINE
        )

    def _key(self, *parts: Any) -> str:
        return ":".join([self.prefix, *map(str, parts)])

    def _aclient(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            # socket_timeout above redis-py 8's 5 s default, like the channel layer (docs/platform-facts.md).
            # The pool as large as the layer's: redis-py 8's default of 100 commands in flight
            # refused connects with 1013 when 1,000 clients reconnected at once (make bench-storm).
            client = redis_client(asynchronous=True, socket_timeout=10, socket_connect_timeout=5, max_connections=2000)
            self._async_clients[loop] = client
        return client

    def _client(self) -> redis.Redis:
        if self._sync_client is None:
            self._sync_client = redis_client(asynchronous=False, socket_timeout=5, socket_connect_timeout=2)
        return self._sync_client

    async def _pipeline(self, commands: list[tuple]) -> list:
        async with self._aclient().pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return await pipe.execute(raise_on_error=False)

    def _record_args(self, record: ConnectionRecord) -> list:
        """The record as HSET's field, value, ... (``vars``: ``asdict`` deep-copies, 17 us a record)."""
        return [x for name, value in vars(record).items() for x in (name, value)]

    async def register(self, record: ConnectionRecord) -> Registered:
        now = _now_ms()
        ttl = realtime_settings.REGISTRY_TTL_S
        count, came_online = await self._commands.submit(
            (
                "EVAL",
                _REGISTER,
                3,
                self._key("conn", record.connection_id),
                self._key("user", record.user_id, "conns"),
                self._key("online"),
                now,
                now + ttl * 1000,
                ttl,
                record.connection_id,
                record.user_id,
                *self._record_args(record),
            )
        )
        return Registered(int(count), bool(came_online))

    async def unregister(self, record: ConnectionRecord) -> int | None:
        now = _now_ms()
        went_offline = await self._commands.submit(
            (
                "EVAL",
                _UNREGISTER,
                4,
                self._key("conn", record.connection_id),
                self._key("user", record.user_id, "conns"),
                self._key("online"),
                self._key("lastseen"),
                now,
                record.connection_id,
                record.user_id,
            )
        )
        return now if went_offline else None

    async def unregister_many(self, records: list[ConnectionRecord], grace_s: float) -> list[tuple[int, int]]:
        """
        Remove ``records`` (a drain's), one script per ``REFRESH_CHUNK``; return ``[(user_id,
        last_seen epoch ms)]`` of the users who went offline: none when ``grace_s`` > 0, those stay
        in ``online`` that many seconds more, for the sweep. Raises redis-py's errors.
        """
        now = _now_ms()
        until = now + int(grace_s * 1000) if grace_s > 0 else 0
        client = self._aclient()
        gone = []
        for start in range(0, len(records), REFRESH_CHUNK):
            chunk = [[r.connection_id, r.user_id] for r in records[start : start + REFRESH_CHUNK]]
            args = (now, until, self.prefix, orjson.dumps(chunk))
            gone += await client.eval(_UNREGISTER_MANY, 2, self._key("online"), self._key("lastseen"), *args)
        return [(int(user_id), now) for user_id in gone]

    async def refresh(self, records: list[ConnectionRecord]) -> None:
        ttl = realtime_settings.REGISTRY_TTL_S
        expiry = _now_ms() + ttl * 1000
        client = self._aclient()
        for start in range(0, len(records), REFRESH_CHUNK):
            chunk = [
                [r.connection_id, r.user_id, *self._record_args(r)] for r in records[start : start + REFRESH_CHUNK]
            ]
            await client.eval(_REFRESH, 1, self._key("online"), ttl, expiry, self.prefix, orjson.dumps(chunk))

    async def sweep(self) -> list[tuple[int, int]]:
        now = _now_ms()
        gone = await self._aclient().eval(_SWEEP, 2, self._key("online"), self._key("lastseen"), now, self.prefix)
        return sorted((int(uid), now) for uid in gone)

    async def count_connect(self, ip: str) -> tuple[int, int]:
        now = time.time()
        per_second, per_minute = self._key("connect", ip, "s", int(now)), self._key("connect", ip, int(now // 60))
        this_second, this_minute = await self._commands.submit(("EVAL", _COUNT_CONNECT, 2, per_second, per_minute))
        return int(this_second), int(this_minute)

    async def publish_process(self, process_id: str, snapshot: dict, ttl_s: float) -> None:
        async with self._aclient().pipeline(transaction=True) as pipe:
            pipe.set(self._key("proc", process_id), orjson.dumps(snapshot), px=int(ttl_s * 1000))
            pipe.zadd(self._key("procs"), {process_id: _now_ms() + int(ttl_s * 1000)})
            pipe.zremrangebyscore(self._key("procs"), "-inf", _now_ms())
            await pipe.execute()

    async def remove_process(self, process_id: str) -> None:
        async with self._aclient().pipeline(transaction=True) as pipe:
            pipe.delete(self._key("proc", process_id))
            pipe.zrem(self._key("procs"), process_id)
            await pipe.execute()

    async def aclose(self) -> None:
        """Close the running event loop's client (shutdown, tests)."""
        client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    # -- reads (sync) ----------------------------------------------------------------------

    def online_user_ids(self) -> list[int]:
        return sorted(int(uid) for uid in self._client().zrangebyscore(self._key("online"), _now_ms(), "+inf"))

    def connections_of(self, user_id: int) -> list[ConnectionRecord]:
        client = self._client()
        ids = client.zrangebyscore(self._key("user", user_id, "conns"), _now_ms(), "+inf")
        with client.pipeline(transaction=False) as pipe:
            for cid in ids:
                pipe.hgetall(self._key("conn", cid.decode()))
            hashes = pipe.execute()
        records = [_record(fields) for fields in hashes if fields]
        return sorted(records, key=lambda r: r.connected_at)

    def connection(self, connection_id: str) -> ConnectionRecord | None:
        """The record of open connection ``connection_id``, or None (closed, expired, never seen)."""
        fields = self._client().hgetall(self._key("conn", connection_id))
        return _record(fields) if fields else None

    def presence(self, user_ids: list[int]) -> dict[int, dict]:
        if not user_ids:
            return {}
        with self._client().pipeline(transaction=False) as pipe:
            for uid in user_ids:
                pipe.zscore(self._key("online"), uid)
            pipe.hmget(self._key("lastseen"), user_ids)
            *scores, last_seen = pipe.execute()
        now = _now_ms()
        return {
            uid: {"online": score is not None and score > now, "last_seen": int(seen) if seen else None}
            for uid, score, seen in zip(user_ids, scores, last_seen, strict=True)
        }

    def processes(self) -> list[dict]:
        client = self._client()
        ids = client.zrangebyscore(self._key("procs"), _now_ms(), "+inf")
        if not ids:
            return []
        return [orjson.loads(blob) for blob in client.mget([self._key("proc", pid.decode()) for pid in ids]) if blob]

    def ping(self) -> None:
        """Raise redis-py's error if Redis does not answer (health checks)."""
        self._client().ping()


_registry: LocalConnectionRegistry | RedisConnectionRegistry | None = None
_registry_lock = threading.Lock()


def get_registry() -> LocalConnectionRegistry | RedisConnectionRegistry:
    """Return the process's registry: in Redis when one is configured (``redis_configured()``), else local."""
    global _registry
    with _registry_lock:
        if _registry is None:
            if redis_configured():
                _registry = RedisConnectionRegistry(realtime_settings.KEY_PREFIX)
            else:
                _registry = LocalConnectionRegistry()
        return _registry


def reset_registry() -> None:
    """Forget the registry so the next ``get_registry()`` reads the settings again (settings changes)."""
    global _registry
    with _registry_lock:
        _registry = None


def _reset_on_settings_change(*, setting, **kwargs):
    if setting == "REALTIME":
        reset_registry()


setting_changed.connect(_reset_on_settings_change, dispatch_uid="realtime.delivery.connection_registry.reset")
