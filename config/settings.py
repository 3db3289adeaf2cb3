"""
Switchboard settings: one module, driven by the environment (django-environ).

Environment variables (see .env.example):
- DJANGO_SECRET_KEY, DJANGO_DEBUG, DJANGO_ALLOWED_HOSTS
- DATABASE_URL: default a SQLite file beside manage.py; ``postgres://...`` for PostgreSQL
- REDIS_URL: the channel layer's Redis; unset means the in-memory layer (one process only)
- REDIS_SENTINELS, REDIS_SENTINEL_MASTER: Redis behind Sentinel instead of REDIS_URL
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

BASE_DIR = Path(__file__).resolve().parent.parent
INSECURE_DEFAULT_SECRET_KEY = "django-insecure-switchboard-development-only"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=INSECURE_DEFAULT_SECRET_KEY)
if not DEBUG and SECRET_KEY == INSECURE_DEFAULT_SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_DEBUG is off but DJANGO_SECRET_KEY is the development default: "
        "set DJANGO_SECRET_KEY to a long random value before running in production."
    )
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    # daphne first: it replaces runserver with an ASGI server that speaks WebSocket.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "drf_spectacular",
    # Swagger UI and ReDoc as static files, for SPECTACULAR_SETTINGS' "SIDECAR" below.
    "drf_spectacular_sidecar",
    "channels",
    "django_tasks",
    "django_tasks_db",
    "realtime",
    "chat",
    "workspaces",
    "progress",
    # ServiceKey's base model and admin (rooms.models); its own APIKey table is left unused.
    "rest_framework_api_key",
    "rooms",
    # CORS answers on /api/ for front ends on another origin (CORS_ALLOWED_ORIGINS, below).
    "corsheaders",
]

MIDDLEWARE = [
    # As high as possible, before any middleware that may answer (WhiteNoise, CommonMiddleware): its docs.
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # Handlers run on several threads: IMMEDIATE takes the write lock at BEGIN, so two
        # writers queue on `timeout` instead of failing to upgrade a read lock mid-transaction.
        "transaction_mode": "IMMEDIATE",
        # Seconds a writer waits for the lock before "database is locked" (a retryable
        # `unavailable` error to the client, never an ack).
        "timeout": env.float("DATABASE_SQLITE_TIMEOUT_S", default=20.0),
        # Write-ahead log: readers (other processes: a second server, the batch worker) do not
        # block the writer, and a commit is one fsync of the log instead of several (2 ms -> 0.2
        # ms here). synchronous=FULL keeps every acknowledged commit through a power cut.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL",
    }
    # A file, not :memory:, so that a Daphne subprocess started by a test sees the test data.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test_db.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI every ORM call runs in a fresh context, so persistent connections are never
    # reused (Django's docs; realtime/db.py): connections come from psycopg's pool instead, and
    # close() returns them. max_size bounds one process's share of PostgreSQL's connections.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A write that waits this long for a row lock fails with a retryable `unavailable` error
    # instead of holding the client (and a pool connection) indefinitely.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c lock_timeout={env.int('DATABASE_LOCK_TIMEOUT_MS', default=10_000)}"
    )
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=16),
        "timeout": env.float("DATABASE_POOL_TIMEOUT_S", default=10.0),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Production runs behind a TLS-terminating proxy (deploy/nginx.conf), which sets X-Forwarded-Proto.
# With DEBUG off: HTTPS only, secure cookies, HSTS (`manage.py check --deploy` is clean).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    # Probes on the host reach these over plain HTTP (deploy/README).
    SECURE_REDIRECT_EXEMPT = [r"^health$", r"^metrics$"]
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)


def _host_and_port(value: str) -> list:
    """``"host:port"`` -> ``[host, port]``; ImproperlyConfigured otherwise."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ImproperlyConfigured(f"REDIS_SENTINELS: {value!r} is not host:port")
    return [host, int(port)]


REDIS_URL = env.str("REDIS_URL", default="")
# Redis high availability (README): "host:port,host:port,..." of the sentinels and the name of the
# master they monitor. Every Redis client (the channel layer here, the core's through
# realtime/redis_client.py) asks the sentinels for the master on each new connection, so a
# failover is followed without a restart.
REDIS_SENTINELS = [_host_and_port(value) for value in env.list("REDIS_SENTINELS", default=[])]
REDIS_SENTINEL_MASTER = env.str("REDIS_SENTINEL_MASTER", default="")
if bool(REDIS_SENTINELS) != bool(REDIS_SENTINEL_MASTER):
    raise ImproperlyConfigured(
        'Set REDIS_SENTINELS and REDIS_SENTINEL_MASTER together (README, "Redis high availability (Sentinel)").'
    )
if REDIS_SENTINELS and REDIS_URL:
    raise ImproperlyConfigured("Set REDIS_URL or REDIS_SENTINELS, not both: which Redis would be meant is unclear.")
if REDIS_SENTINELS:
    # channels_redis opens a SentinelConnectionPool (its sentinels / master_name host form); sentinel
    # queries time out and are not retried, as realtime.redis_client.SENTINEL_TIMEOUT_S says why.
    _redis_layer_host = {
        "sentinels": [tuple(sentinel) for sentinel in REDIS_SENTINELS],
        "master_name": REDIS_SENTINEL_MASTER,
        "sentinel_kwargs": {"socket_timeout": 2, "socket_connect_timeout": 2, "retry": Retry(NoBackoff(), 0)},
    }
else:
    _redis_layer_host = {"address": REDIS_URL}
if REDIS_URL or REDIS_SENTINELS:
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis's layer with batched group membership (realtime/delivery/layers.py).
            "BACKEND": "realtime.delivery.layers.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        **_redis_layer_host,
                        # redis-py 8 defaults socket_timeout to 5 s, which races the layer's
                        # 5 s blocking read and kills idle sockets (channels_redis issue 422,
                        # docs/platform-facts.md). 15 s and a large pool: 0 drops over 1,000 sockets.
                        "socket_timeout": 15,
                        "socket_connect_timeout": 5,
                        "max_connections": 2000,
                    }
                ],
                # Only per-process hub channels live in this layer (realtime.delivery.hub), so each
                # carries a whole process's share of the traffic: give it room. Counted in entries:
                # the events one send gives a process are one (realtime/delivery/layers.py).
                "capacity": 5000,
                # Hubs re-add their groups every REALTIME["HUB_REFRESH_S"] (< group_expiry), so a
                # crashed process's channel leaves every group within this many seconds.
                "group_expiry": env.int("CHANNEL_GROUP_EXPIRY_S", default=300),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 5000}}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Daphne serves no static files: WhiteNoise does, from STATIC_ROOT (collectstatic) in production
# and straight from the apps' and STATICFILES_DIRS' files while DEBUG is on.
WHITENOISE_USE_FINDERS = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Protocol errors raised by services answer REST with the envelope's codes (realtime/rest.py).
    "EXCEPTION_HANDLER": "realtime.rest.exception_handler",
}
# Access tokens are short-lived (an open socket must refresh in band, docs/protocol.md "auth.refresh");
# refresh tokens last a day. Both from the environment, in seconds.
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_ACCESS_TOKEN_LIFETIME_S", default=300)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_REFRESH_TOKEN_LIFETIME_S", default=86_400)),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Switchboard API",
    "DESCRIPTION": "REST side of Switchboard; the WebSocket protocol is in docs/protocol.md.",
    "VERSION": "1.0.0",
    # /api/docs/ and /api/redoc/ load their JS and CSS from our static files (drf-spectacular-sidecar,
    # pinned in requirements.txt), not a CDN's @latest: they work offline and do not change under us.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Chat's assignable roles (member, admin) are used by several components; without a name of its
    # own the enum's would depend on which came first. The name it had when add_member alone used it.
    "ENUM_NAME_OVERRIDES": {"MemberInRoleEnum": "chat.serializers.ASSIGNABLE_ROLES"},
}

# The real-time core's settings, merged over realtime.conf.DEFAULTS (units in the names);
# REALTIME_OVERRIDES (a JSON object) overrides any of them from the environment.
REALTIME = {
    # The registry, presence and cross-process stats share the channel layer's Redis.
    "REDIS_URL": REDIS_URL,
    "REDIS_SENTINELS": REDIS_SENTINELS,
    "REDIS_SENTINEL_MASTER": REDIS_SENTINEL_MASTER,
    # Typing indicators are frequent and worthless once late: a stricter bucket than the rest.
    "TYPE_RATE_LIMITS": {"chat.typing": {"per_min": 30, "burst": 5}},
    # Pages on other origins whose WebSocket handshakes pass the Origin check beside ALLOWED_HOSTS's
    # ("https://app.example.com,...": scheme, host and port; realtime.consumer.security).
    "ALLOWED_ORIGINS": env.list("WEBSOCKET_ALLOWED_ORIGINS", default=[]),
    **env.json("REALTIME_OVERRIDES", default={}),
}

# LOG_FORMAT: "json" (one JSON object per line; the default with DEBUG off) or "plain".
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
LOGGING = {
    "version": 1,
    # Keep Daphne's and Django's own loggers: without this, Daphne's "Exception inside
    # application" never reaches the log (docs/platform-facts.md).
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "realtime.ops.logs.RedactSecrets"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["redact_secrets"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # Django's DEFAULT_LOGGING gives "django" its own console handler (DEBUG only) and lets it
    # propagate to root as well, so under runserver every request line ("django.channels.server",
    # Daphne's runserver) and every 404 ("django.request") was printed twice (issue 20). Root's
    # handler alone formats and redacts them. (Its other handler, mail_admins, sends nothing:
    # ADMINS is empty.)
    "loggers": {"django": {"handlers": [], "propagate": True}},
}
# presence.changed goes to conversations of at most this many members (chat/presence.py).
CHAT_PRESENCE_MAX_MEMBERS = env.int("CHAT_PRESENCE_MAX_MEMBERS", default=100)
CHAT_MAX_MESSAGE_CHARS = env.int("CHAT_MAX_MESSAGE_CHARS", default=4000)  # chat.send content limit
# Chat uploads (POST /api/chat/attachments/): largest file in bytes, and the MIME types accepted
# for `file` messages (images are any format Pillow opens: image/png, image/jpeg, image/gif, image/webp).
CHAT_MAX_UPLOAD_BYTES = env.int("CHAT_MAX_UPLOAD_BYTES", default=10 * 1024 * 1024)
CHAT_FILE_TYPES = env.list(
    "CHAT_FILE_TYPES",
    default=[
        "application/pdf",
        "text/plain",
        "text/csv",
        "application/zip",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ],
)
CHAT_IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"]
# People search (GET /api/users/?search=, the chat page's pickers): searches per user, DRF's rate syntax.
CHAT_PEOPLE_SEARCH_RATE = env.str("CHAT_PEOPLE_SEARCH_RATE", default="60/min")
# Batch documents run in `manage.py db_worker` (django-tasks with its database backend: no broker
# beyond the database we already have; README "Batch tasks").
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# Without Redis the worker's events could not reach the server: run the worker inside it instead.
TASKS_WORKER_IN_SERVER = env.bool("TASKS_WORKER_IN_SERVER", default=not (REDIS_URL or REDIS_SENTINELS))
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
MEDIA_URL = "media/"
# Uploads for batch tasks: largest data file and template, in bytes.
TASK_MAX_UPLOAD_BYTES = env.int("TASK_MAX_UPLOAD_BYTES", default=20 * 1024 * 1024)
# A running task whose worker has not reported for this long has lost its worker: it is failed.
TASK_LEASE_S = env.int("TASK_LEASE_S", default=60)
# Every server process looks for such tasks this often (progress.lifecycle.fail_abandoned_tasks).
TASK_SWEEP_S = env.int("TASK_SWEEP_S", default=10)
# Progress coalescing (seed 001): at most one task.progress per interval, only on a move this big (%).
PROGRESS_MIN_INTERVAL_MS = env.int("PROGRESS_MIN_INTERVAL_MS", default=100)
# PROGRESS_MIN_DELTA, the old name without its unit, is still read until the next release
# (system check progress.W001 asks for the rename).
PROGRESS_MIN_DELTA_PCT = env.float("PROGRESS_MIN_DELTA_PCT", default=env.float("PROGRESS_MIN_DELTA", default=1.0))
WORKSPACE_MAX_SETTINGS_BYTES = env.int("WORKSPACE_MAX_SETTINGS_BYTES", default=65_536)  # workspace settings JSON limit
# Generic rooms (rooms/policy.py): namespace pattern -> who joins ("authenticated", "staff",
# "nobody") and who publishes from a client ("members", "authenticated", "staff", "nobody");
# back-end services publish to any room that matches. ROOMS_JSON (a JSON object) replaces them.
ROOMS = env.json(
    "ROOMS_JSON",
    default={
        "game:*": {"join": "authenticated", "publish": "members"},
        "announcements": {"join": "authenticated", "publish": "staff"},
    },
)
# Requests per service key to POST /api/rooms/publish/ (DRF's rate syntax; counted per process).
ROOMS_PUBLISH_RATE = env.str("ROOMS_PUBLISH_RATE", default="600/min")

# Front ends on another origin (seed 004's Vue front end had its own). REST: django-cors-headers
# answers CORS for the origins listed in CORS_ALLOWED_ORIGINS ("https://app.example.com,..."), on
# /api/ only (token obtain/refresh and the REST API; pages and the admin stay same-site). No
# CORS_ALLOW_CREDENTIALS: such a front end authenticates with a JWT in the Authorization header,
# so no cookie needs to cross origins, and a listed origin cannot make the browser send the
# user's Switchboard session cookie with a request it reads the answer of.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/"
# WebSocket: REALTIME["ALLOWED_ORIGINS"] (WEBSOCKET_ALLOWED_ORIGINS, above) for the handshake's Origin check.

# Seed 004's single sign-on on its endpoint /ws (chat.compat.seed004): a user's new connection
# there closes with 4409 their other seed-004 connections ("endpoint", the seed's behaviour: it
# had this one endpoint), every other connection of theirs on any endpoint ("user"), or none
# ("off"). The native endpoint's rule is REALTIME["SINGLE_SESSION"].
CHAT_SEED004_SINGLE_SESSION = env.str("CHAT_SEED004_SINGLE_SESSION", default="endpoint")
if CHAT_SEED004_SINGLE_SESSION not in ("endpoint", "user", "off"):
    raise ImproperlyConfigured(
        f"CHAT_SEED004_SINGLE_SESSION is {CHAT_SEED004_SINGLE_SESSION!r}: use endpoint, user or off."
    )

# Seed 001's progress batching on /compat/001/ws (progress.compat.ProgressBatch): per connection,
# up to SIZE task_progress updates per INTERVAL_MS window in one message, the seed broadcaster's
# batchSize (10) and broadcastInterval (100 ms), on by default as there; INTERVAL_MS 0: each
# update is its own message.
PROGRESS_SEED001_BATCH_SIZE = env.int("PROGRESS_SEED001_BATCH_SIZE", default=10)
PROGRESS_SEED001_BATCH_INTERVAL_MS = env.int("PROGRESS_SEED001_BATCH_INTERVAL_MS", default=100)

# Seed 003's Socket.IO clients (rooms/compat/seed003.py, docs/migration.md "Seed 003"): the
# seed's Engine.IO heartbeat (a ping every 25 s, dropped after 10 s without its pong) and largest
# message (1 MB: python-socketio's max_http_buffer_size, for a polling POST and a WebSocket message).
SOCKETIO_PING_INTERVAL_S = env.int("SOCKETIO_PING_INTERVAL_S", default=25)
SOCKETIO_PING_TIMEOUT_S = env.int("SOCKETIO_PING_TIMEOUT_S", default=10)
SOCKETIO_MAX_MESSAGE_BYTES = env.int("SOCKETIO_MAX_MESSAGE_BYTES", default=1_000_000)
