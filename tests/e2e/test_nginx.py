"""
deploy/nginx.conf as shipped (only ports, upstream addresses and paths rewritten:
tests/deploy.py), run by Debian's nginx in front of two Daphne processes started with the
systemd unit's flags and the production settings (DEBUG off, ``DJANGO_ALLOWED_HOSTS`` the site's
name): clients speak TLS to nginx with the site's name, as browsers and ``chat_client`` do.

Each client comes from an address of its own in 127.0.0.0/8, so the per-address connection
budget (lowered to ``IP_BUDGET_PER_MIN`` here) is exercised by one test and spent by no other.
"""

import asyncio
import json
import os
import secrets
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from http.client import HTTPConnection, RemoteDisconnected

import pytest
import websockets
from asgiref.sync import sync_to_async

from chat.models import Conversation, Membership, Message
from tests.deploy import SERVER_NAME, Nginx, unit_daphne_args
from tests.servers import BASE_DIR, Daphne, database_url

pytestmark = [pytest.mark.any_database, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
IP_BUDGET_PER_MIN = 12
STATIC_FILE = "realtime/client.js"


@dataclass
class Stack:
    nginx: Nginx
    daphnes: list[Daphne]

    def daphne_output(self) -> str:
        return "\n".join(server.output() for server in self.daphnes)


@pytest.fixture(scope="module")
def stack(django_db_setup, tmp_path_factory):
    """nginx (deploy/nginx.conf) in front of two Daphne processes with the unit's flags and production settings."""
    from django.db import connection

    env = {
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": SERVER_NAME,
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": os.environ["REDIS_URL"],
        "MEDIA_ROOT": str(tmp_path_factory.mktemp("media")),
        "LOG_FORMAT": "plain",
        "REALTIME_OVERRIDES": json.dumps(
            {
                # A private prefix: the per-address counts of earlier tests (shared Redis) stay out.
                "KEY_PREFIX": f"nginx-{uuid.uuid4().hex[:8]}",
                "CONNECTIONS_PER_IP_PER_MIN": IP_BUDGET_PER_MIN,
                # Off: one budget under test, whose count a second boundary cannot reset mid-test.
                "CONNECTIONS_PER_IP_PER_S": 10_000,
                # The writers of the restart test send 10 messages/s, over the default frame rate.
                "RATE_PER_MIN": 100_000,
                "RATE_BURST": 1_000,
            }
        ),
    }
    daphnes = [Daphne(env, unit_daphne_args()), Daphne(env, unit_daphne_args())]
    nginx = Nginx(
        [server.port for server in daphnes],
        files={f"staticfiles/{STATIC_FILE}": (BASE_DIR / "static" / STATIC_FILE).read_bytes()},
    )
    yield Stack(nginx, daphnes)
    nginx.stop()
    for server in daphnes:
        server.stop()


# -- clients ---------------------------------------------------------------------------------------


def https(stack: Stack, method: str, path: str, *, source: str, body: bytes | None = None, headers=None):
    """One HTTPS request to nginx for ``SERVER_NAME`` from address ``source`` -> ``(status, headers, body)``."""
    sock = socket.create_connection(("127.0.0.1", stack.nginx.https_port), timeout=10, source_address=(source, 0))
    connection = HTTPConnection(SERVER_NAME, stack.nginx.https_port, timeout=10)
    connection.sock = stack.nginx.ssl_context().wrap_socket(sock, server_hostname=SERVER_NAME)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def log_in(stack: Stack, username: str, source: str) -> str:
    """An access token from ``POST /api/auth/token/`` through nginx."""
    body = json.dumps({"username": username, "password": f"{username}-pass"}).encode()
    status, _, answer = https(
        stack, "POST", "/api/auth/token/", source=source, body=body, headers={"Content-Type": "application/json"}
    )
    assert status == 200, answer
    return json.loads(answer)["access"]


def ws_connect(stack: Stack, path: str, *, source: str, origin: str | None = None, headers=None, **kwargs):
    """``websockets.connect`` to ``wss://SERVER_NAME<path>`` through nginx, from address ``source``."""
    return websockets.connect(
        f"wss://{SERVER_NAME}:{stack.nginx.https_port}{path}",
        host="127.0.0.1",
        local_addr=(source, 0),
        ssl=stack.nginx.ssl_context(),
        origin=origin,
        additional_headers=headers,
        proxy=None,
        open_timeout=10,
        **kwargs,
    )


async def next_of_type(ws, frame_type: str, timeout: float = 10) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] in (frame_type, "error"):
                return frame


# -- the tests -------------------------------------------------------------------------------------


async def test_websockets_upgrade_through_nginx_on_the_native_and_a_compat_endpoint(stack, alice):
    token = await asyncio.to_thread(log_in, stack, "alice", "127.0.0.10")
    async with ws_connect(stack, f"/ws/?token={token}", source="127.0.0.10") as native:
        welcome = await next_of_type(native, "welcome")
        assert welcome["type"] == "welcome" and welcome["data"]["user"]["username"] == "alice"
        async with ws_connect(stack, f"/compat/000/ws?token={token}", source="127.0.0.10") as seed:
            await seed.send(json.dumps({"type": "workspace.create", "name": "Behind nginx"}))
            async with asyncio.timeout(10):
                created = json.loads(await seed.recv())
            assert (created["type"], created["name"]) == ("workspace.created", "Behind nginx")
            assert (await next_of_type(native, "workspace.created"))["data"]["id"] == created["id"]
    # Query strings never reach the access log: the token stays out of it.
    assert "/ws/ HTTP/1.1" in stack.nginx.access_log() and token not in stack.nginx.access_log()


async def test_origin_and_host_are_checked_as_deployed(stack, alice):
    token = await asyncio.to_thread(log_in, stack, "alice", "127.0.0.11")
    async with ws_connect(stack, f"/ws/?token={token}", source="127.0.0.11", origin=f"https://{SERVER_NAME}") as ws:
        assert (await next_of_type(ws, "welcome"))["type"] == "welcome"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with ws_connect(stack, f"/ws/?token={token}", source="127.0.0.11", origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403

    # Another Host never reaches Daphne (nginx's catch-all answers 444: no response at all), nor
    # another TLS server name (the handshake is refused).
    with pytest.raises(RemoteDisconnected):
        await asyncio.to_thread(https, stack, "GET", "/health", source="127.0.0.11", headers={"Host": "evil.example"})
    sock = socket.create_connection(("127.0.0.1", stack.nginx.https_port), timeout=10)
    no_name_check = ssl.create_default_context(cafile=str(stack.nginx.certificate))
    no_name_check.check_hostname = False
    with pytest.raises(ssl.SSLError):
        no_name_check.wrap_socket(sock, server_hostname="evil.example")
    sock.close()
    assert "/health" not in stack.daphne_output()

    # Plain HTTP is redirected to the site's HTTPS URL.
    plain = HTTPConnection("127.0.0.1", stack.nginx.http_port, timeout=10)
    plain.request("GET", "/chat/?x=1", headers={"Host": SERVER_NAME})
    response = plain.getresponse()
    assert (response.status, response.getheader("Location")) == (301, f"https://{SERVER_NAME}/chat/?x=1")
    plain.close()


async def test_the_per_address_budget_counts_the_client_address_not_a_forwarded_header(stack, carol):
    token = await asyncio.to_thread(log_in, stack, "carol", "127.0.0.12")
    accepted = 0
    # A client changing X-Forwarded-For on every attempt: were the header believed, each attempt
    # would be a new address and none refused. A minute boundary may reset the count once.
    for attempt in range(2 * IP_BUDGET_PER_MIN + 2):
        async with ws_connect(
            stack,
            f"/ws/?token={token}",
            source="127.0.0.12",
            headers={"X-Forwarded-For": f"198.51.100.{attempt + 1}", "X-Real-IP": f"198.51.100.{attempt + 1}"},
        ) as ws:
            first = await next_of_type(ws, "welcome")
        if first["type"] == "error":
            assert first["error"]["code"] == "limit_exceeded" and ws.close_code == 1013
            break
        accepted += 1
    else:
        pytest.fail(f"{accepted} connections from one address were all accepted")
    assert accepted >= IP_BUDGET_PER_MIN
    # Another client, behind the same proxy, still gets in.
    async with ws_connect(stack, f"/ws/?token={token}", source="127.0.0.13") as ws:
        assert (await next_of_type(ws, "welcome"))["type"] == "welcome"
    output = stack.daphne_output()
    assert "ip=127.0.0.12 " in output and "ip=127.0.0.13 " in output and "198.51.100." not in output


def test_static_files_from_nginx_and_uploads_through_django(stack, alice):
    status, headers, body = https(stack, "GET", f"/static/{STATIC_FILE}", source="127.0.0.14")
    assert status == 200 and body == (BASE_DIR / "static" / STATIC_FILE).read_bytes()
    assert headers["Cache-Control"] == "max-age=604800"
    assert f"/static/{STATIC_FILE}" not in stack.daphne_output()

    # A 3 MB upload: above nginx's 1 MB default, within client_max_body_size 25m and the app's limit.
    token = log_in(stack, "alice", "127.0.0.14")
    content = secrets.token_hex(1_500_000).encode()
    boundary = uuid.uuid4().hex
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nfile\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="notes.txt"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    auth = {"Authorization": f"Bearer {token}"}
    status, _, answer = https(
        stack,
        "POST",
        "/api/chat/attachments/",
        source="127.0.0.14",
        body=form,
        headers={**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert status == 201, answer
    attachment = json.loads(answer)
    status, _, downloaded = https(stack, "GET", attachment["url"], source="127.0.0.14", headers=auth)
    assert (status, downloaded) == (200, content)
    # Uploads are private: no public /media/ location; Django answers 404 for it.
    assert https(stack, "GET", "/media/", source="127.0.0.14")[0] == 404

    # Over client_max_body_size nginx refuses from the headers alone; Daphne never reads the body.
    sock = socket.create_connection(("127.0.0.1", stack.nginx.https_port), timeout=10)
    connection = HTTPConnection(SERVER_NAME, stack.nginx.https_port, timeout=10)
    connection.sock = stack.nginx.ssl_context().wrap_socket(sock, server_hostname=SERVER_NAME)
    connection.putrequest("POST", "/api/chat/attachments/")
    connection.putheader("Content-Length", str(26 * 1024 * 1024))
    connection.endheaders()
    assert connection.getresponse().status == 413
    connection.close()


def test_socketio_long_polling_and_upgrade_stay_with_one_process(stack, alice):
    """Seed 003's Engine.IO session lives in one process: its requests all reach it (sticky upstream)."""
    token = log_in(stack, "alice", "127.0.0.15")
    path = "/compat/003/socket.io/?EIO=4&transport=polling"
    status, _, body = https(stack, "GET", path, source="127.0.0.15")
    assert status == 200 and body.startswith(b"0"), body
    sid = json.loads(body[1:])["sid"]
    connect = f'40/game,{{"token":"{token}"}}'.encode()
    status, _, body = https(stack, "POST", f"{path}&sid={sid}", source="127.0.0.15", body=connect)
    assert (status, body) == (200, b"OK")
    status, _, body = https(stack, "GET", f"{path}&sid={sid}", source="127.0.0.15")
    assert status == 200 and body.startswith(b'40/game,{"sid"'), body

    async def upgrade():
        url = f"/compat/003/socket.io/?EIO=4&transport=websocket&sid={sid}"
        async with ws_connect(stack, url, source="127.0.0.15") as ws:
            await ws.send("2probe")
            async with asyncio.timeout(10):
                assert await ws.recv() == "3probe"
            await ws.send("5")

    asyncio.run(upgrade())


# -- the rolling restart: last, it restarts the module's Daphne processes ---------------------------


class Writer:
    """Sends numbered messages with client_msg_ids through nginx; on any failure reconnects and resends."""

    def __init__(self, stack: Stack, token: str, source: str, conversation_id: int, name: str):
        self.stack, self.token, self.source, self.conversation_id, self.name = (
            stack,
            token,
            source,
            conversation_id,
            name,
        )
        self.acked: set[str] = set()
        self.close_codes: list[int | None] = []

    async def run(self, stop: asyncio.Event) -> None:
        ws, n = None, 0
        while not stop.is_set():
            key = f"{self.name}-{n}"
            try:
                if ws is None:
                    ws = await ws_connect(self.stack, f"/ws/?token={self.token}", source=self.source)
                    assert (await next_of_type(ws, "welcome"))["type"] == "welcome"
                frame = {"conversation_id": self.conversation_id, "content": key, "client_msg_id": key}
                await ws.send(json.dumps({"type": "chat.send", "ref": key, "data": frame}))
                async with asyncio.timeout(5):
                    while (reply := json.loads(await ws.recv())).get("ref") != key:
                        pass
                if reply["type"] == "ack":
                    self.acked.add(key)
                    n += 1
                await asyncio.sleep(0.1)
            except (OSError, TimeoutError, AssertionError, websockets.WebSocketException):
                if ws is not None:
                    self.close_codes.append(ws.close_code)
                    ws.transport.abort()
                ws = None
                await asyncio.sleep(0.2)
        if ws is not None:
            await ws.close()


class Reader:
    """Shows the conversation in seq order as docs/protocol.md's "Resume" says, reconnecting through nginx."""

    def __init__(self, stack: Stack, token: str, source: str, conversation_id: int):
        self.stack, self.token, self.source, self.conversation_id = stack, token, source, conversation_id
        self.shown: list[int] = []
        self.held: set[int] = set()
        self.close_codes: list[int | None] = []

    def take(self, seqs: list[int]) -> bool:
        """Show what is now gap-free; return True when a hole remains below a held message."""
        synced = self.shown[-1] if self.shown else 0
        self.held.update(seq for seq in seqs if seq > synced)
        while synced + 1 in self.held:
            synced += 1
            self.held.discard(synced)
            self.shown.append(synced)
        return bool(self.held)

    async def resume(self, ws) -> None:
        while True:
            ref = uuid.uuid4().hex
            after = self.shown[-1] if self.shown else 0
            data = {"conversation_id": self.conversation_id, "after_seq": after}
            await ws.send(json.dumps({"type": "chat.join", "ref": ref, "data": data}))
            async with asyncio.timeout(5):
                while (reply := json.loads(await ws.recv())).get("ref") != ref:
                    if reply["type"] == "chat.message":
                        self.take([reply["data"]["seq"]])
            assert reply["type"] == "ack", reply
            self.take([message["seq"] for message in reply["data"]["messages"]])
            if not reply["data"]["has_more"]:
                return

    async def run(self, stop: asyncio.Event) -> None:
        while True:
            try:
                async with ws_connect(self.stack, f"/ws/?token={self.token}", source=self.source) as ws:
                    assert (await next_of_type(ws, "welcome"))["type"] == "welcome"
                    await self.resume(ws)
                    while not stop.is_set():
                        try:
                            async with asyncio.timeout(0.3):
                                frame = json.loads(await ws.recv())
                        except TimeoutError:
                            continue
                        if frame["type"] == "chat.message" and self.take([frame["data"]["seq"]]):
                            await self.resume(ws)
                        elif frame["type"] == "resync":
                            await self.resume(ws)
                    await self.resume(ws)
                    return
            except (OSError, TimeoutError, AssertionError, websockets.WebSocketException) as exc:
                self.close_codes.append(getattr(getattr(exc, "rcvd", None), "code", None))
                await asyncio.sleep(0.2)


async def test_a_rolling_restart_behind_nginx_moves_clients_and_loses_nothing(stack, make_user):
    users = [await sync_to_async(make_user)(name) for name in ("wanda", "walt", "rita", "ravi")]
    conversation = await Conversation.objects.acreate(kind=Conversation.Kind.GROUP, title="rolling")
    await Membership.objects.abulk_create([Membership(user=user, conversation=conversation) for user in users])
    sources = [f"127.0.1.{i + 1}" for i in range(len(users))]
    tokens = [await asyncio.to_thread(log_in, stack, user.username, sources[i]) for i, user in enumerate(users)]
    writers = [Writer(stack, tokens[i], sources[i], conversation.pk, users[i].username) for i in (0, 1)]
    readers = [Reader(stack, tokens[i], sources[i], conversation.pk) for i in (2, 3)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(client.run(stop)) for client in (*writers, *readers)]

    def acks() -> int:
        return sum(len(writer.acked) for writer in writers)

    async def wait_for_acks(more: int, timeout: float = 15) -> None:
        target, deadline = acks() + more, time.monotonic() + timeout
        while acks() < target:
            assert time.monotonic() < deadline, f"fewer than {target} acks after {timeout} s"
            await asyncio.sleep(0.1)

    try:
        await wait_for_acks(5)
        # One process at a time, as an operator restarts them (systemctl restart ...@8001, then @8002).
        for server in stack.daphnes:
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start_again)
            await wait_for_acks(5)
        stop.set()
        async with asyncio.timeout(20):
            await asyncio.gather(*tasks)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()

    # Every client was on a restarted process at some point, and each was moved with close 1001.
    for client in (*writers, *readers):
        assert 1001 in client.close_codes, client.close_codes
    stored = [m async for m in Message.objects.filter(conversation=conversation).values_list("client_msg_id", "seq")]
    keys = [key for key, _ in stored]
    acked = set().union(*(writer.acked for writer in writers))
    assert acked <= set(keys) and len(keys) == len(set(keys)), "an acked message lost or stored twice"
    for reader in readers:
        assert reader.shown == sorted(seq for _, seq in stored), reader.shown
