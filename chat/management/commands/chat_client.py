"""
``manage.py chat_client``: a terminal chat client for trying a running server without a browser.

It logs in through ``POST /api/auth/token/``, connects to ``/ws/`` with the access token in the
Authorization header, joins one conversation, sends each line typed on stdin as ``chat.send`` and
prints every message that arrives. On a dropped connection it reconnects with backoff and resumes
from the last ``seq`` it printed (docs/protocol.md, "Resume"), so nothing is missed or repeated.
"""

import asyncio
import getpass
import json
import sys
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlsplit, urlunsplit

import websockets
from django.core.management.base import BaseCommand, CommandError

# Close codes after which reconnecting cannot help (docs/protocol.md, "Close codes").
FATAL_CLOSE_CODES = {1009, 4401, 4403, 4409}
MAX_BACKOFF_S = 30.0


def obtain_token(base_url: str, username: str, password: str) -> str:
    """
    Return an access JWT from ``POST <base_url>/api/auth/token/``.

    Raise CommandError if the credentials are refused, ConnectionError if the server is unreachable.
    """
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/api/auth/token/",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)["access"]
    except urllib.error.HTTPError as exc:
        raise CommandError(f"Login refused ({exc.code}): {exc.read().decode(errors='replace')}") from None
    except urllib.error.URLError as exc:
        raise ConnectionError(f"cannot reach {base_url}: {exc.reason}") from None


def websocket_url(base_url: str) -> str:
    """``http://host:port`` -> ``ws://host:port/ws/`` (``https`` -> ``wss``)."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, "/ws/", "", ""))


class Session:
    """One user's view of one conversation: the last seq shown, member names, the output stream."""

    def __init__(self, out, conversation_id: int):
        self.out = out
        self.conversation_id = conversation_id
        self.last_seq = 0
        self.connected_once = False
        self.names: dict[int, str] = {}

    def show(self, message: dict) -> None:
        """Print ``message`` once: anything at or below the last seq shown was printed already."""
        if message["conversation_id"] != self.conversation_id or message["seq"] <= self.last_seq:
            return
        self.last_seq = message["seq"]
        name = self.names.get(message["sender_id"], f"user {message['sender_id']}")
        self.out.write(f"[{message['seq']}] {name}: {message['content']}")
        self.out.flush()


async def read_lines(queue: asyncio.Queue) -> None:
    """Feed stdin lines into ``queue``; None at end of input."""
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        await queue.put(line.decode().rstrip("\n"))
    await queue.put(None)


async def request(ws, frame_type: str, data: dict, session: Session) -> dict:
    """Send a command and return its reply, printing the events that arrive before it."""
    ref = uuid.uuid4().hex[:8]
    await ws.send(json.dumps({"type": frame_type, "ref": ref, "data": data}))
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("ref") == ref and frame["type"] in ("ack", "error"):
            return frame
        if frame["type"] == "chat.message":
            session.show(frame["data"])


async def run_connection(ws_url: str, token: str, session: Session, lines: asyncio.Queue) -> bool:
    """Serve one connection; return True when the user ended the input (stop), False to reconnect."""
    async with websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        welcome = json.loads(await ws.recv())
        if welcome["type"] != "welcome":
            raise CommandError(f"Server refused the connection: {welcome.get('error', welcome)}")
        has_more = True
        while has_more:
            reply = await request(
                ws, "chat.join", {"conversation_id": session.conversation_id, "after_seq": session.last_seq}, session
            )
            if reply["type"] == "error":
                raise CommandError(f"Cannot join: {reply['error']['message']}")
            session.names = {m["id"]: m["username"] for m in reply["data"]["conversation"]["members"]}
            for message in reply["data"]["messages"]:
                session.show(message)
            has_more = reply["data"]["has_more"]
        session.connected_once = True
        session.out.write(f"-- joined conversation {session.conversation_id} as {welcome['data']['user']['username']}")
        session.out.flush()

        async def print_arrivals():
            async for text in ws:
                frame = json.loads(text)
                if frame["type"] == "chat.message":
                    session.show(frame["data"])
                elif frame["type"] == "error":
                    session.out.write(f"-- error: {frame['error']['code']}: {frame['error']['message']}")
                    session.out.flush()

        printer = asyncio.create_task(print_arrivals())
        try:
            while True:
                getter = asyncio.create_task(lines.get())
                done, _ = await asyncio.wait({getter, printer}, return_when=asyncio.FIRST_COMPLETED)
                if printer in done:
                    getter.cancel()
                    printer.result()  # raises ConnectionClosed when the server went away
                    return False
                line = getter.result()
                if line is None:
                    return True
                if line.strip():
                    # The ack and the echoed chat.message are handled by print_arrivals.
                    frame = {"conversation_id": session.conversation_id, "content": line, "client_msg_id": uuid.uuid4().hex}
                    await ws.send(json.dumps({"type": "chat.send", "data": frame}))
        finally:
            printer.cancel()


class Command(BaseCommand):
    help = "Chat in a terminal: log in, join a conversation, send stdin lines, print arrivals."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Server base URL (default %(default)s).")
        parser.add_argument("--username", required=True)
        parser.add_argument("--password", help="Asked for when omitted.")
        parser.add_argument("--conversation", type=int, required=True, help="Conversation id to join.")

    def handle(self, *args, **options):
        password = options["password"] or getpass.getpass(f"Password for {options['username']}: ")
        try:
            asyncio.run(self.chat(options["url"], options["username"], password, options["conversation"]))
        except KeyboardInterrupt:
            pass

    async def chat(self, base_url: str, username: str, password: str, conversation_id: int) -> None:
        session = Session(self.stdout, conversation_id)
        lines: asyncio.Queue = asyncio.Queue()
        stdin_reader = asyncio.create_task(read_lines(lines))
        backoff = 0.5
        try:
            while True:
                try:
                    # A fresh token per connection: a 4401 after a long outage is usually expiry.
                    token = await asyncio.to_thread(obtain_token, base_url, username, password)
                    if await run_connection(websocket_url(base_url), token, session, lines):
                        return
                    backoff = 0.5
                except websockets.ConnectionClosed as exc:
                    code = exc.rcvd.code if exc.rcvd else 1006
                    if code in FATAL_CLOSE_CODES:
                        raise CommandError(f"Connection closed with {code}") from None
                    self.stderr.write(f"-- connection closed ({code}); reconnecting in {backoff:.1f} s")
                except OSError as exc:
                    if not session.connected_once:
                        raise CommandError(str(exc)) from None
                    self.stderr.write(f"-- cannot connect ({exc}); retrying in {backoff:.1f} s")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
        finally:
            stdin_reader.cancel()
