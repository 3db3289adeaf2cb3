"""
``manage.py chat_client``: a terminal chat client for trying a running server without a browser.

It logs in through ``POST /api/auth/token/``, connects to ``/ws/`` with the access token in the
Authorization header, joins one conversation, sends each line read from stdin (a terminal, a pipe
or a file) as ``chat.send`` and prints every message of the conversation once, in ``seq`` order,
as ``[seq] name: text``. It follows docs/protocol.md as a long-lived client should:

- Tokens: it refreshes its access token before ``welcome.token_expires_at`` (``POST
  /api/auth/token/refresh/``, then ``auth.refresh`` in band), so a session outlives any number of
  token lifetimes; after a 4401 it logs in again and reconnects.
- Resume: after a reconnect it asks for what it missed (``chat.join {after_seq}``), where
  ``after_seq`` is the highest seq with no gap below it ("Resume"); a live message whose seq skips
  ahead makes it fetch the hole the same way, and ``resync`` events do too.
- Sends: every line gets a ``client_msg_id``; a line not acked when the connection drops is sent
  again with the same id after the reconnect (idempotent, stored once). At the end of input it
  waits for the acks of what it sent before it exits.
"""

import asyncio
import base64
import getpass
import itertools
import json
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlsplit, urlunsplit

import websockets
from django.core.management.base import BaseCommand, CommandError

# Close codes after which reconnecting cannot help (docs/protocol.md, "Close codes").
FATAL_CLOSE_CODES = {1009, 4403, 4409}
MAX_BACKOFF_S = 30.0
# After a refusal for a passing reason (1013 and the like): docs/protocol.md asks for at least 5 s.
MIN_REFUSED_BACKOFF_S = 5.0
# Refresh the access token this long before it expires, or at 80 % of a shorter lifetime.
REFRESH_MARGIN_S = 30.0


class TokenRefused(Exception):
    """The server refused the access token at the handshake: log in again, then reconnect."""


class Refused(Exception):
    """The server refused for a passing reason (Redis away, a connection cap, shutting down): retry later."""


# Refusals that a later try can get past (docs/protocol.md, "Error codes").
RETRYABLE_CODES = {"unavailable", "rate_limited", "server_error", "limit_exceeded", "going_away"}


def token_expiry(token: str) -> float:
    """The ``exp`` claim (epoch s) of a JWT, read without verifying it (the server verifies)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]


class Credentials:
    """A user's password login and its current token pair, renewed through the REST endpoints."""

    def __init__(self, base_url: str, username: str, password: str):
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.access = ""
        self.refresh = ""

    def _post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(
            f"{self.base_url}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response)
        except urllib.error.URLError as exc:
            if isinstance(exc, urllib.error.HTTPError):
                raise
            raise ConnectionError(f"cannot reach {self.base_url}: {exc.reason}") from None

    def log_in(self) -> str:
        """
        Obtain a fresh token pair with the password (``POST /api/auth/token/``); return the access JWT.

        Raise CommandError if the credentials are refused, ConnectionError if the server is unreachable.
        """
        try:
            pair = self._post("/api/auth/token/", {"username": self.username, "password": self.password})
        except urllib.error.HTTPError as exc:
            raise CommandError(f"Login refused ({exc.code}): {exc.read().decode(errors='replace')}") from None
        self.access, self.refresh = pair["access"], pair["refresh"]
        return self.access

    def renew(self) -> str:
        """Return a new access JWT from the refresh token; log in again if the server refuses it."""
        try:
            self.access = self._post("/api/auth/token/refresh/", {"refresh": self.refresh})["access"]
        except urllib.error.HTTPError:
            return self.log_in()
        return self.access

    def fresh_access(self) -> str:
        """The access JWT to connect with: logged in on first use, renewed when it is about to expire."""
        if not self.access:
            return self.log_in()
        if token_expiry(self.access) - time.time() < REFRESH_MARGIN_S:
            return self.renew()
        return self.access


def websocket_url(base_url: str) -> str:
    """``http://host:port`` -> ``ws://host:port/ws/`` (``https`` -> ``wss``)."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, "/ws/", "", ""))


def describe_error(error: dict) -> str:
    """An error object as one line: ``code: message`` and, for ``invalid``, each field's messages."""
    text = f"{error['code']}: {error['message']}"
    details = error.get("details")
    if error["code"] == "invalid" and isinstance(details, dict):
        text += "".join(
            f"; {field}: {' '.join(map(str, messages)) if isinstance(messages, list) else messages}"
            for field, messages in details.items()
        )
    return text


def sender_label(message: dict, names: dict[int, str]) -> str:
    """The name to print for a message's sender: its display name, marked ``(support)`` for staff."""
    sender = message.get("sender") or {}
    name = sender.get("name") or names.get(message["sender_id"]) or f"user {message['sender_id']}"
    return f"{name} (support)" if sender.get("is_staff") else name


class Session:
    """
    One user's view of one conversation, across connections: what was printed (``last_seq``, the
    highest seq with no gap below it), messages held above a gap, member names and unacked sends.
    """

    def __init__(self, out, conversation_id: int):
        self.out = out
        self.conversation_id = conversation_id
        self.last_seq = 0
        self.held: dict[int, dict] = {}  # seq -> message that arrived above a gap
        self.names: dict[int, str] = {}
        self.unacked: dict[str, str] = {}  # client_msg_id -> content, in the order typed
        self.input_ended = False
        self.welcomed = False  # the current connection joined (resets the reconnect backoff)
        self.connected_once = False

    def write(self, line: str) -> None:
        """Print ``line`` (which carries its own newline) at once: the other terminal is watching."""
        self.out.write(line)
        self.out.flush()

    def receive(self, message: dict) -> bool:
        """
        Take a message of the conversation; print it and any held ones it completes, in seq order.
        Return True when a gap remains below what is held (the caller fetches it).
        """
        if message["conversation_id"] != self.conversation_id or message["seq"] <= self.last_seq:
            return bool(self.held)
        self.held[message["seq"]] = message
        while self.last_seq + 1 in self.held:
            shown = self.held.pop(self.last_seq + 1)
            self.last_seq = shown["seq"]
            self.write(f"[{shown['seq']}] {sender_label(shown, self.names)}: {shown['content']}")
        return bool(self.held)


class Connection:
    """One open socket: requests matched to replies by ``ref``, events handed to the session."""

    def __init__(self, ws, session: Session, credentials: Credentials):
        self.ws = ws
        self.session = session
        self.credentials = credentials
        self.replies: dict[str, asyncio.Future] = {}
        self.refs = (f"c{n}" for n in itertools.count(1))
        self.catching_up: asyncio.Task | None = None
        self.catch_up_again = False
        self.sending = asyncio.Lock()  # one chat.send at a time: lines are stored in the order typed
        # Lines being sent; each leaves the set once acked, a failed one stays for the final gather to raise.
        self.tasks: set[asyncio.Task] = set()

    async def request(self, frame_type: str, data: dict) -> dict:
        """Send a command and return its ``ack`` or ``error`` frame."""
        ref = next(self.refs)
        reply = self.replies[ref] = asyncio.get_running_loop().create_future()
        try:
            await self.ws.send(json.dumps({"type": frame_type, "ref": ref, "data": data}))
            return await reply
        finally:
            self.replies.pop(ref, None)

    async def read(self) -> None:
        """Dispatch every frame until the socket closes; always raises ``ConnectionClosed``."""
        async for text in self.ws:
            frame = json.loads(text)
            future = self.replies.get(frame.get("ref"))
            if frame["type"] in ("ack", "error") and future is not None and not future.done():
                future.set_result(frame)
            elif frame["type"] == "chat.message":
                self.take(frame["data"])
            elif frame["type"] == "resync":
                # The server lost events this connection should have had (docs/protocol.md, "resync").
                self.catch_up()
            elif frame["type"] == "error":
                self.session.write(f"-- error: {describe_error(frame['error'])}")
        # websockets ends the iteration quietly on a 1000 or 1001 close: a close all the same.
        raise self.ws.protocol.close_exc

    def take(self, message: dict) -> None:
        """Hand a live ``chat.message`` event's data to the session; fetch the hole when it skips ahead."""
        if self.session.receive(message):
            self.catch_up()

    def catch_up(self) -> None:
        """Fetch everything after the last gap-free seq (``chat.join {after_seq}``), once at a time
        (asked again while it runs: once more after it)."""
        self.catch_up_again = True
        if self.catching_up is None or self.catching_up.done():
            self.catching_up = asyncio.create_task(self._catch_up())

    async def _catch_up(self) -> None:
        while self.catch_up_again:
            self.catch_up_again = False
            try:
                await self.resume()
            except (CommandError, Refused) as exc:
                self.session.write(f"-- catching up failed: {exc}")
                return

    async def resume(self) -> None:
        """``chat.join`` from the last gap-free seq, page after page; refreshes member names."""
        has_more = True
        while has_more:
            reply = await self.request(
                "chat.join", {"conversation_id": self.session.conversation_id, "after_seq": self.session.last_seq}
            )
            if reply["type"] == "error":
                if reply["error"]["code"] in RETRYABLE_CODES:
                    raise Refused(describe_error(reply["error"]))
                raise CommandError(f"Cannot join: {describe_error(reply['error'])}")
            members = reply["data"]["conversation"]["members"]
            self.session.names = {m["user_id"]: m.get("name") or m["username"] for m in members}
            for message in reply["data"]["messages"]:
                self.session.receive(message)
            has_more = reply["data"]["has_more"]

    async def send_line(self, client_msg_id: str, content: str) -> None:
        """
        ``chat.send`` one line, after the lines typed before it; a passing refusal (``rate_limited``,
        ``unavailable``, ``server_error``) is retried with the same ``client_msg_id`` after
        ``retry_after_ms``. On the ack, print it (if the event has not) and forget it.
        """
        data = {"conversation_id": self.session.conversation_id, "content": content, "client_msg_id": client_msg_id}
        async with self.sending:
            while True:
                reply = await self.request("chat.send", data)
                error = reply.get("error") or {}
                if error.get("code") not in RETRYABLE_CODES:
                    break
                await asyncio.sleep((error.get("details") or {}).get("retry_after_ms", 1000) / 1000)
        self.session.unacked.pop(client_msg_id, None)
        if reply["type"] == "error":
            self.session.write(f"-- not sent: {describe_error(reply['error'])}")
        else:
            self.take(reply["data"]["message"])

    def send_soon(self, client_msg_id: str, content: str) -> None:
        """Send a typed line in the background (``send_line``: one at a time, retried); the reader goes on meanwhile."""
        task = asyncio.create_task(self.send_line(client_msg_id, content))
        self.tasks.add(task)
        task.add_done_callback(self._forget_if_sent)

    def _forget_if_sent(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is None:
            self.tasks.discard(task)

    async def keep_token_fresh(self, expires_at_ms: int | None) -> None:
        """Before each expiry, get a new access token over REST and hand it over with ``auth.refresh``."""
        while expires_at_ms:
            lifetime_s = expires_at_ms / 1000 - time.time()
            await asyncio.sleep(max(0.0, lifetime_s - min(REFRESH_MARGIN_S, lifetime_s * 0.2)))
            token = await asyncio.to_thread(self.credentials.renew)
            reply = await self.request("auth.refresh", {"token": token})
            if reply["type"] == "error":
                # The connection keeps its current token until it expires; the 4401 then reconnects.
                self.session.write(f"-- token refresh refused: {describe_error(reply['error'])}")
                return
            expires_at_ms = reply["data"]["expires_at"]


def read_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
    """Feed stdin's lines into ``queue`` from a thread, None at end of input (a tty, pipe or file)."""
    for line in sys.stdin:
        loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\n"))
    loop.call_soon_threadsafe(queue.put_nowait, None)


async def run_connection(ws_url: str, credentials: Credentials, session: Session, lines: asyncio.Queue) -> None:
    """
    Serve one connection; return when the input ended and every line was acked. A close raises ``ConnectionClosed``.
    """
    headers = {"Authorization": f"Bearer {await asyncio.to_thread(credentials.fresh_access)}"}
    async with websockets.connect(ws_url, additional_headers=headers) as ws:
        welcome = json.loads(await ws.recv())
        if welcome["type"] != "welcome":
            if welcome.get("error", {}).get("code") == "unauthorized":
                raise TokenRefused(welcome["error"]["message"])
            if welcome.get("error", {}).get("code") in RETRYABLE_CODES:
                raise Refused(describe_error(welcome["error"]))
            raise CommandError(f"Server refused the connection: {describe_error(welcome['error'])}")
        conn = Connection(ws, session, credentials)
        reader = asyncio.create_task(conn.read())
        tasks = [reader, asyncio.create_task(conn.keep_token_fresh(welcome["data"].get("token_expires_at")))]

        async def unless_closed(awaitable):
            """Await ``awaitable`` unless the socket closes first (then raise its ``ConnectionClosed``)."""
            task = asyncio.ensure_future(awaitable)
            tasks.append(task)
            await asyncio.wait({task, reader}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                reader.result()
            tasks.remove(task)
            return task.result()

        try:
            await unless_closed(conn.resume())
            session.connected_once = True
            session.welcomed = True
            session.write(f"-- joined conversation {session.conversation_id} as {welcome['data']['user']['username']}")
            # Lines typed while disconnected (or not acked before the drop) go again, same ids.
            for client_msg_id, content in list(session.unacked.items()):
                conn.send_soon(client_msg_id, content)
            while not session.input_ended:
                line = await unless_closed(lines.get())
                if line is None:
                    session.input_ended = True
                elif line.strip():
                    client_msg_id = uuid.uuid4().hex
                    session.unacked[client_msg_id] = line
                    conn.send_soon(client_msg_id, line)
            # End of input: stay until every line sent is acked (resent after a reconnect if need be).
            await unless_closed(asyncio.gather(*conn.tasks))
        except CommandError:
            # A refusal the user is told about (an unknown conversation...), not a client crash:
            # close normally rather than with the 1011 an exception leaving the block sends.
            await ws.close()
            raise
        finally:
            for task in (*tasks, conn.catching_up, *conn.tasks):
                if task is not None:
                    task.cancel()


class Command(BaseCommand):
    help = "Chat in a terminal: log in, join a conversation, send stdin lines, print arrivals."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Server base URL (default %(default)s).")
        parser.add_argument("--username", required=True)
        parser.add_argument("--password", help="Asked for when omitted.")
        parser.add_argument("--conversation", type=int, required=True, help="Conversation id to join.")

    def handle(self, *args, **options):
        password = options["password"] or getpass.getpass(f"Password for {options['username']}: ")
        credentials = Credentials(options["url"], options["username"], password)
        try:
            asyncio.run(self.chat(credentials, options["conversation"]))
        except KeyboardInterrupt:
            pass

    async def chat(self, credentials: Credentials, conversation_id: int) -> None:
        """Connect, and reconnect after each passing refusal or drop, until stdin ends and every line is acked."""
        session = Session(self.stdout, conversation_id)
        lines: asyncio.Queue = asyncio.Queue()
        threading.Thread(target=read_lines, args=(asyncio.get_running_loop(), lines), daemon=True).start()
        backoff = 0.5
        while True:
            min_wait = 0.0  # the least waits docs/protocol.md asks for ("Close codes")
            try:
                await run_connection(websocket_url(credentials.base_url), credentials, session, lines)
                return
            except websockets.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else 1006
                if code in FATAL_CLOSE_CODES:
                    raise CommandError(f"Connection closed with {code}") from None
                min_wait = {1013: MIN_REFUSED_BACKOFF_S, 4429: 60.0}.get(code, 0.0)
                if code == 4401:
                    # The token expired or was revoked: a fresh login decides (refused: CommandError).
                    credentials.access = ""
                self.stderr.write(f"-- connection closed ({code}); reconnecting")
            except TokenRefused as exc:
                credentials.access = ""
                self.stderr.write(f"-- token refused ({exc}); logging in again")
            except Refused as exc:
                min_wait = MIN_REFUSED_BACKOFF_S
                self.stderr.write(f"-- refused ({exc}); retrying")
            except websockets.InvalidStatus as exc:
                self.stderr.write(f"-- handshake refused (HTTP {exc.response.status_code}); retrying")
            except OSError as exc:
                if not session.connected_once:
                    raise CommandError(str(exc)) from None
                self.stderr.write(f"-- cannot connect ({exc}); retrying")
            if session.welcomed:  # that connection was healthy: start the backoff again
                session.welcomed, backoff = False, 0.5
            await asyncio.sleep(max(backoff, min_wait))
            backoff = min(backoff * 2, MAX_BACKOFF_S)
