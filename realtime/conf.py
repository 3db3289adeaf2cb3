"""
The real-time core's settings: ``settings.REALTIME`` merged over ``DEFAULTS``.

Read at call time (``realtime_settings.AUTH_TIMEOUT_S``), never at import time; the cache is
dropped on Django's ``setting_changed`` so tests can override values.
"""

from django.conf import settings
from django.core.signals import setting_changed

__all__ = ["DEFAULTS", "RealtimeSettings", "realtime_settings"]

DEFAULTS = {
    # First-frame auth window for anonymous connections; on expiry, close 4408 (docs/protocol.md).
    "AUTH_TIMEOUT_S": 10,
    # Advertised in `welcome`; seed 003 pinged every 25 s, under the 60 s idle cut of common proxies.
    "HEARTBEAT_S": 25,
    # Largest text frame the application accepts (seed 003's 1 MB); over it: error, close 1009.
    # Daphne's --websocket-max-message-size (default 1 MiB) must stay above it (deploy/).
    "MAX_FRAME_BYTES": 1_000_000,
    # A list reply (workspace.list, chat.conversations, task.list, chat.history, a chat.join
    # resume) stops adding items at this many encoded bytes and hands out a cursor for the rest
    # (realtime/paging.py): well under MAX_FRAME_BYTES and MAX_SEND_BUFFER_BYTES, so one page
    # neither fails to send nor fills a slow reader's buffer alone.
    "LIST_PAGE_MAX_BYTES": 524_288,
    # Longest `ref` echoed back; longer ones are a bad_frame (a ref is a correlation id, not data).
    "MAX_REF_CHARS": 64,
    # Per-connection token bucket over every frame (seed 001: messages per minute per client).
    "RATE_PER_MIN": 120,
    "RATE_BURST": 30,
    # Stricter buckets for some frame types, checked after the general one:
    # {"chat.typing": {"per_min": 20, "burst": 3}}.
    "TYPE_RATE_LIMITS": {},
    # Sustained abuse: this many refused frames within RATE_ABUSE_WINDOW_S closes with 4429.
    "RATE_ABUSE_FRAMES": 20,
    "RATE_ABUSE_WINDOW_S": 10,
    # New connections per client IP per minute (seed 001's connections per minute); over it: 1013.
    # The IP is Daphne's scope["client"], the forwarded one when Daphne runs with --proxy-headers.
    "CONNECTIONS_PER_IP_PER_MIN": 60,
    # ... and per second, so that the minute's budget cannot be spent in one burst.
    "CONNECTIONS_PER_IP_PER_S": 10,
    # A connection over that budget gets its refusal this many seconds late (a client reconnecting
    # in a loop is slowed to this pace; an idle coroutine costs the server little).
    "CONNECT_REFUSAL_DELAY_S": 1.0,
    # Handshakes one process works on at once (authentication, registry, session groups,
    # welcome), so that a reconnect storm is served at full speed instead of piling up past
    # Daphne's 5 s handshake timeout (make bench-storm). At the bound Daphne stops accepting and
    # new connections wait in the listen backlog; under uvicorn one beyond it is refused with
    # 1013 at once, before authentication (realtime.consumer.connect_rate). 0: no bound.
    "MAX_HANDSHAKES_IN_PROGRESS": 100,
    # Open connections per user, over every process; over it: 1013.
    "MAX_CONNECTIONS_PER_USER": 20,
    # Open connections per server process (seed 001's maxClients); over it: 1013.
    "MAX_CONNECTIONS_PER_PROCESS": 5000,
    # Origins of front ends served elsewhere whose pages may open a WebSocket here, besides the
    # ALLOWED_HOSTS sites: full origins "https://app.example.com" (scheme, host, port must match;
    # seed 004's front end had its own origin). realtime.consumer.security; docs/protocol.md "Origin".
    "ALLOWED_ORIGINS": [],
    # Single-session mode (seed 004): a user's new session closes their older connections, on
    # every process, with an error frame `session_replaced` and close code 4409.
    "SINGLE_SESSION": False,
    # Groups one connection may follow at its own request (chat.join, task.subscribe); over it the
    # request is refused. Its user's own groups (each conversation, workspace) do not count.
    "MAX_SUBSCRIPTIONS": 500,
    # A client that stops reading: Daphne's transport buffers 64 KiB before it reports back-
    # pressure; past that, this many more bytes (characters of text frames) close it with 4413,
    # and the TCP connection is aborted if it has not read them SLOW_CLIENT_GRACE_S later
    # (realtime/servers/daphne/send_buffer.py).
    "MAX_SEND_BUFFER_BYTES": 1_048_576,
    "SLOW_CLIENT_GRACE_S": 5,
    # A client that sends faster than its consumer works: Daphne stops reading its socket once
    # this many frames wait for the consumer (realtime/servers/daphne/receive_queue.py).
    "MAX_RECEIVE_QUEUE_FRAMES": 64,
    # A sequenced event (publish(..., order=)) that arrives past a gap in its stream waits this long
    # for the events before it (two processes published them in the opposite order), then goes out.
    "SEQUENCE_GAP_WAIT_S": 0.25,
    # Hubs re-add their groups this often; must stay well under the layer's group_expiry (300 s).
    "HUB_REFRESH_S": 60,
    # Pause after the hub loses the channel layer (Redis away) before it reads again.
    "HUB_RETRY_S": 1.0,
    # Redis for the connection registry, presence and cross-process stats; "" keeps them in
    # this process's memory (one process only, like the in-memory channel layer).
    "REDIS_URL": "",
    # Or Redis behind Sentinel (used instead of REDIS_URL): the sentinels' [[host, port], ...] and
    # the name of the master they monitor; clients follow a failover (realtime/redis_client.py).
    "REDIS_SENTINELS": [],
    "REDIS_SENTINEL_MASTER": "",
    "KEY_PREFIX": "switchboard",
    # Registry records expire after REGISTRY_TTL_S unless their process refreshes them (every
    # REGISTRY_REFRESH_S); a crashed process's users go offline within TTL + PRESENCE_SWEEP_S.
    "REGISTRY_TTL_S": 60,
    "REGISTRY_REFRESH_S": 20,
    "PRESENCE_SWEEP_S": 10,
    # Each process publishes its counters for /api/websocket/stats this often.
    "STATS_PUBLISH_S": 5,
    # Open connections are re-checked this often: inactive users, ended sessions -> close 4401.
    "SESSION_RECHECK_S": 60,
    # On SIGTERM, connections are closed with 1001 and the process waits this long for them to go.
    "DRAIN_TIMEOUT_S": 5,
    # A user whose last connection a draining process closed stays online this long: reconnected
    # meanwhile, nobody is told offline-then-online; not, the sweep says offline after it.
    "PRESENCE_DRAIN_GRACE_S": 15,
    # Freeze what survives each full garbage collection so the next ones stay short; frozen
    # garbage cycles are collected at the latest this often (realtime/delivery/gc_pauses.py).
    "GC_FREEZE": True,
    "GC_FULL_COLLECT_S": 600,
    # The server patches and direct write paths (realtime/servers): applied only at the versions
    # they were tested with (system check realtime.E002); False runs on the servers' public behaviour.
    "SERVER_PATCHES": True,
}


class RealtimeSettings:
    """Attribute access to the merged ``REALTIME`` settings; raise AttributeError on unknown names."""

    def __init__(self):
        self._cache = None

    def __getattr__(self, name):
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown REALTIME setting {name!r}")
        if self._cache is None:
            self._cache = {**DEFAULTS, **getattr(settings, "REALTIME", {})}
        return self._cache[name]

    def reload(self):
        self._cache = None


realtime_settings = RealtimeSettings()


def _reload(*, setting, **kwargs):
    if setting == "REALTIME":
        realtime_settings.reload()


setting_changed.connect(_reload, dispatch_uid="realtime.conf.reload")
