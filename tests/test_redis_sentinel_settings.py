"""
The Redis Sentinel settings (README "Redis high availability"): ``REDIS_SENTINELS`` and
``REDIS_SENTINEL_MASTER`` configure the channel layer and the core instead of ``REDIS_URL``;
mistakes stop the start with a message naming the fix. The failover itself runs over real
processes in tests/e2e/test_redis_failover.py.
"""

import runpy
import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from realtime.redis_client import socketio_redis_url
from tests.servers import BASE_DIR

pytestmark = pytest.mark.any_database


def settings_with(monkeypatch, **environ: str) -> dict:
    """config/settings.py's names, evaluated with ``environ`` as the only Redis variables set."""
    for name in ("REDIS_URL", "REDIS_SENTINELS", "REDIS_SENTINEL_MASTER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(BASE_DIR / "config" / "settings.py"))


def test_sentinels_configure_the_channel_layer_and_the_core(monkeypatch):
    names = settings_with(monkeypatch, REDIS_SENTINELS="10.0.0.1:26379,10.0.0.2:26380", REDIS_SENTINEL_MASTER="main")
    (host,) = names["CHANNEL_LAYERS"]["default"]["CONFIG"]["hosts"]
    assert names["CHANNEL_LAYERS"]["default"]["BACKEND"] == "realtime.delivery.layers.RedisChannelLayer"
    assert host["sentinels"] == [("10.0.0.1", 26379), ("10.0.0.2", 26380)]
    assert host["master_name"] == "main"
    assert host["socket_timeout"] == 15  # above the layer's 5 s blocking read (docs/platform-facts.md)
    assert names["REALTIME"]["REDIS_SENTINELS"] == [["10.0.0.1", 26379], ["10.0.0.2", 26380]]
    assert names["REALTIME"]["REDIS_SENTINEL_MASTER"] == "main"
    # A worker beside the server reaches it through Redis, as with REDIS_URL.
    assert names["TASKS_WORKER_IN_SERVER"] is False


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"REDIS_SENTINELS": "10.0.0.1:26379"}, "together"),
        ({"REDIS_SENTINEL_MASTER": "main"}, "together"),
        ({"REDIS_SENTINELS": "10.0.0.1", "REDIS_SENTINEL_MASTER": "main"}, "is not host:port"),
        ({"REDIS_SENTINELS": "10.0.0.1:x", "REDIS_SENTINEL_MASTER": "main"}, "is not host:port"),
        (
            {"REDIS_SENTINELS": "10.0.0.1:26379", "REDIS_SENTINEL_MASTER": "main", "REDIS_URL": "redis://r:6379/0"},
            "not both",
        ),
    ],
)
def test_incomplete_or_ambiguous_redis_settings_stop_the_start(monkeypatch, environ, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        settings_with(monkeypatch, **environ)


def test_socketio_gets_the_sentinel_form_of_the_address(settings):
    settings.REALTIME = {
        **settings.REALTIME,
        "REDIS_URL": "",
        "REDIS_SENTINELS": [["10.0.0.1", 26379], ["10.0.0.2", 26380]],
        "REDIS_SENTINEL_MASTER": "main",
    }
    # python-socketio's AsyncRedisManager form: sentinels, database, master name.
    assert socketio_redis_url() == "redis+sentinel://10.0.0.1:26379,10.0.0.2:26380/0/main"


def test_health_is_503_when_no_sentinel_answers(db, settings):
    settings.REALTIME = {
        **settings.REALTIME,
        "REDIS_URL": "",
        "REDIS_SENTINELS": [["127.0.0.1", 1], ["127.0.0.1", 2]],
        "REDIS_SENTINEL_MASTER": "main",
    }
    started = time.monotonic()
    response = Client().get("/health")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("error: MasterNotFoundError")
    # Each sentinel is asked once (not with redis-py's 10 retries: 8.5 s here for these two).
    assert time.monotonic() - started < 3
