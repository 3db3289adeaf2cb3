"""
Shared test fixtures.

Consumer tests run against ``config.asgi.application`` through Channels' WebsocketCommunicator,
once over the in-memory channel layer and once over Redis (``REDIS_URL``, which ``make test``
provides by starting a throwaway redis-server when none is given); on PostgreSQL over Redis only.
"""

import asyncio
import json
import os
import uuid
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken

from realtime.delivery import close_process

REDIS_URL = os.environ.get("REDIS_URL", "")
E2E_DIR = Path(__file__).resolve().parent / "tests" / "e2e"


def pytest_collection_modifyitems(items):
    """
    ``make test`` runs pytest on two workers (pytest-xdist, ``--dist loadgroup``): the end-to-end
    tests on one, the others on the other, each in their usual order. The end-to-end tests share
    a session's two Daphne processes and the database they serve (tests/e2e/conftest.py); when
    other tests ran between two of them, a browser test once found another test's conversation
    on its page.
    """
    for item in items:
        item.add_marker(pytest.mark.xdist_group("e2e" if item.path.is_relative_to(E2E_DIR) else "in-process"))


def redis_layer_config(prefix: str) -> dict:
    """The Redis channel layer as settings.py builds it, under a private key prefix."""
    if not REDIS_URL:
        raise RuntimeError("These tests need Redis: set REDIS_URL or run them with `make test`.")
    return {
        "default": {
            "BACKEND": "realtime.delivery.layers.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}], "prefix": prefix},
        }
    }


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """PBKDF2 costs ~0.5 s per user; tests do not test hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def one_address_many_connections(settings):
    """
    Every in-process test client comes from the same (empty) address: the per-address rates are tested on their own.
    """
    settings.REALTIME = {**settings.REALTIME, "CONNECTIONS_PER_IP_PER_S": 10_000}


@pytest.fixture(autouse=True)
def collector_as_cpython_configures_it(settings):
    """Tests run many event loops in one process; freezing their objects would hide garbage
    cycles from the tests that look for them (realtime/tests/test_gc_pauses.py tests the freezer)."""
    settings.REALTIME = {**settings.REALTIME, "GC_FREEZE": False}


# The PostgreSQL pass of `make test` runs the layer-parametrized tests over Redis only: the
# in-memory layer does not meet the database, the SQLite pass runs it, and leaving it out keeps
# `make test` within CI's 15 minutes on a 2-core machine.
LAYERS = ["redis"] if os.environ.get("DATABASE_URL", "").startswith("postgres") else ["memory", "redis"]


@pytest.fixture(params=LAYERS)
def channel_layer(request, settings):
    """Run the test over the in-memory layer and over Redis (``LAYERS``); yield the backend name."""
    if request.param == "redis":
        prefix = f"test-{uuid.uuid4().hex[:8]}"
        settings.CHANNEL_LAYERS = redis_layer_config(prefix)
        settings.REALTIME = {**settings.REALTIME, "REDIS_URL": REDIS_URL, "KEY_PREFIX": prefix}
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
        settings.REALTIME = {**settings.REALTIME, "REDIS_URL": ""}
    yield request.param


@pytest.fixture
def make_user(db):
    """Factory: ``make_user("alice", is_staff=False, is_active=True)`` -> a saved user."""

    def make(username: str, **fields):
        return get_user_model().objects.create_user(username=username, password=f"{username}-pass", **fields)

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def carol(make_user):
    return make_user("carol")


def protocol_frame_types() -> list[str]:
    """
    Every registered client frame type but those of realtime's own test app (realtime/tests/testapp,
    installed for the tests only by config/test_settings.py) and the compatibility endpoints'
    internal ``compat.*`` types (documented in docs/migration.md): the frame types of docs/protocol.md.
    """
    from realtime import registry

    return [
        t
        for t in registry.registered_types()
        if not registry.get_handler(t).__module__.startswith("realtime.tests.") and not t.startswith("compat.")
    ]


def access_token(user) -> str:
    """A simplejwt access token for ``user``."""
    return str(AccessToken.for_user(user))


def bearer_client(user=None, *, expired: bool = False):
    """
    A Django test client sending ``user``'s access token (expired a second ago if ``expired``); anonymous without a
    user.
    """
    from datetime import timedelta

    from django.test import Client as DjangoClient

    if user is None:
        return DjangoClient()
    token = AccessToken.for_user(user)
    if expired:
        token.set_exp(lifetime=-timedelta(seconds=1))
    return DjangoClient(headers={"Authorization": f"Bearer {token}"})


class Client:
    """A WebsocketCommunicator with JSON helpers and the frame-level waits the tests use."""

    def __init__(self, communicator: WebsocketCommunicator):
        self.communicator = communicator

    async def send(self, frame) -> None:
        await self.communicator.send_json_to(frame)

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout: float = 2) -> dict:
        """
        The next frame sent, JSON-decoded; ``TimeoutError`` after ``timeout`` seconds without one.

        Unlike asgiref's ``receive_output``, a timeout leaves the application running: it would
        cancel it, and one frame slower than the timeout on a busy machine would end the
        connection the test goes on using.
        """
        communicator = self.communicator
        try:
            message = await asyncio.wait_for(communicator.output_queue.get(), timeout)
        except TimeoutError:
            if communicator.future.done():
                communicator.future.result()  # the application's own exception says more
            raise
        assert message["type"] == "websocket.send", message
        return json.loads(message["text"])

    async def request(self, frame_type: str, data: dict | None = None, ref: str = "r1") -> dict:
        """Send a command and return its reply (the next ack or error carrying ``ref``)."""
        await self.send({"type": frame_type, "ref": ref, "data": data or {}})
        while True:
            frame = await self.receive()
            if frame["type"] in ("ack", "error") and frame.get("ref") == ref:
                return frame

    async def receive_type(self, frame_type: str, timeout: float = 2) -> dict:
        """Return the next frame of ``frame_type``, skipping others."""
        while True:
            frame = await self.receive(timeout)
            if frame["type"] == frame_type:
                return frame

    async def assert_nothing(self, timeout: float = 0.2) -> None:
        assert await self.communicator.receive_nothing(timeout=timeout)

    async def receive_close(self, timeout: float = 2) -> int:
        message = await self.communicator.receive_output(timeout)
        assert message["type"] == "websocket.close", message
        return message.get("code", 1000)


@pytest.fixture
async def connect(channel_layer, transactional_db):
    """
    Factory: ``await connect(user=alice)`` (token in the query string), ``connect(token=...)``,
    ``connect(headers=[...])`` or ``connect()`` (anonymous). With a user, the welcome frame is
    consumed and returned as ``client.welcome``. Every client is disconnected at teardown.
    """
    from config.asgi import application

    clients: list[Client] = []

    async def open_client(*, user=None, token=None, path="/ws/", headers=None, expect_welcome=True):
        if user is not None:
            token = access_token(user)
        if token is not None:
            path = f"{path}?token={token}"
        communicator = WebsocketCommunicator(application, path, headers=headers or [])
        connected, _ = await communicator.connect(timeout=5)
        client = Client(communicator)
        client.connected = connected
        clients.append(client)
        if connected and user is not None and expect_welcome:
            client.welcome = await client.receive_type("welcome", timeout=5)
        return client

    yield open_client
    try:
        for client in clients:
            await client.communicator.disconnect()
    finally:
        await close_process()


@pytest.fixture
def session_cookie():
    """Factory: ``await session_cookie(user)`` -> a ``Cookie`` header value of a logged-in session."""
    from asgiref.sync import sync_to_async
    from django.conf import settings
    from django.test import Client as DjangoClient

    def login(user) -> bytes:
        client = DjangoClient()
        client.force_login(user)
        name = settings.SESSION_COOKIE_NAME
        return f"{name}={client.cookies[name].value}".encode()

    async def make(user) -> bytes:
        return await sync_to_async(login)(user)

    return make


@pytest.fixture(autouse=True)
def close_shared_thread_connections():
    """ORM calls an async test makes through sync_to_async run in asgiref's one shared thread,
    whose connection Django's teardown never sees: close it, or PostgreSQL keeps the session."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


@pytest.fixture
def database_queries(monkeypatch, settings):
    """
    ``with database_queries.recording(): ...`` records the SQL of every ``database_call`` (the
    consumer's worker-thread database work), per call: realtime/tests/query_capture.py.
    """
    from realtime.tests.query_capture import install

    return install(monkeypatch, settings)
