"""
The README's first hour, as a newcomer does it: ``make run``'s own commands (migrate, seed_demo,
``manage.py runserver`` with its autoreloader, no Redis), then the two-terminal chat with two real
``chat_client`` processes, kept going across several access-token lifetimes and a server restart.
"""

import asyncio
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import pytest
import websockets

from tests.e2e.helpers import ChatClient, login, next_of_type, wait_until
from tests.servers import BASE_DIR, RunServer

pytestmark = [pytest.mark.any_database, pytest.mark.e2e]

# Short enough that the test sees several lifetimes, long enough for a loaded machine's round trips.
TOKEN_LIFETIME_S = 6


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory):
    """``make run``'s first two steps, once: a migrated SQLite file with seed_demo's data; its conversation id."""
    path = tmp_path_factory.mktemp("readme") / "db.sqlite3"
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DATABASE_URL")}
    env["DATABASE_URL"] = f"sqlite:///{path}"
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=BASE_DIR, env=env, check=True)
    printed = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"], cwd=BASE_DIR, env=env, check=True, capture_output=True, text=True
    ).stdout
    return path, int(re.search(r"conversation (\d+):", printed).group(1))


def readme_env(tmp_path, demo_database, **extra: str) -> dict[str, str]:
    """
    The environment ``make run`` gives a fresh clone (SQLite, no Redis: the in-memory layer), on a copy of the demo
    data.
    """
    shutil.copy(demo_database[0], tmp_path / "db.sqlite3")
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DATABASE_URL")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", MEDIA_ROOT=str(tmp_path / "media"), **extra)
    return env


def test_two_terminals_chat_through_token_lifetimes_and_a_restart(tmp_path, demo_database):
    env = readme_env(tmp_path, demo_database, JWT_ACCESS_TOKEN_LIFETIME_S=str(TOKEN_LIFETIME_S))
    conversation_id = demo_database[1]
    # Under the autoreloader the server runs in a thread that is not the main one: the first
    # connection's process start once failed there (set_wakeup_fd) and answered HTTP 500.
    server = RunServer(env)
    alice = ChatClient(server.http, "alice", "alice-demo-pass", conversation_id, env=env)
    bob = ChatClient(server.http, "bob", "bob-demo-pass", conversation_id, env=env)
    seq = 0

    def exchange(writer: ChatClient, reader: ChatClient, name: str, text: str, timeout: float = 20) -> None:
        nonlocal seq
        seq += 1
        writer.type(text)
        assert reader.wait_for(text, timeout) == f"[{seq}] {name}: {text}"
        assert writer.wait_for(text, timeout) == f"[{seq}] {name}: {text}"

    try:
        alice.wait_for("-- joined conversation")
        bob.wait_for("-- joined conversation")
        exchange(alice, bob, "alice", "hello bob")
        # Each client refreshes its token in band before it expires (the server logs each refresh):
        # four refreshes each is more than three lifetimes of chatting on the same sockets.
        for refreshes in range(1, 5):
            wait_until(
                lambda refreshes=refreshes: server.output().count("token refreshed") >= 2 * refreshes,
                timeout=3 * TOKEN_LIFETIME_S + 30,
                what=f"{2 * refreshes} token refreshes",
            )
            exchange(bob, alice, "bob", f"still here {refreshes}")
        assert "connection closed" not in "\n".join(alice.lines + bob.lines)
        assert "Traceback" not in server.output(), server.output()[-3000:]

        server.stop()
        alice.type("typed while the server was down")
        server.start_again()
        seq += 1
        expected = f"[{seq}] alice: typed while the server was down"
        assert bob.wait_for("typed while the server was down", timeout=60) == expected
        exchange(bob, alice, "bob", "back after the restart")
        assert alice.quit() == 0
        assert bob.quit() == 0
        # Every line printed once, in seq order, by both.
        for client in (alice, bob):
            printed = [int(line[1 : line.index("]")]) for line in client.lines if line.startswith("[")]
            assert printed == list(range(1, seq + 1)), client.lines
        assert "Traceback" not in server.output(), server.output()[-3000:]
    finally:
        alice.kill()
        bob.kill()
        server.stop()


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def assert_each_request_logged_once(server) -> None:
    """One access line per request, and one "Not Found" warning for a 404: not two of each (issue 20)."""
    missing, sentinel = f"/no-such-page-{uuid.uuid4().hex}", f"/sentinel-{uuid.uuid4().hex}"
    health = f"/health?probe={uuid.uuid4().hex}"
    assert get(server.http + health) == 200
    assert get(server.http + missing) == 404
    get(server.http + sentinel)  # logged after the two above: once it shows, theirs are all written
    wait_until(lambda: sentinel in server.output(), timeout=10, what="the sentinel request's log line")
    lines = server.output().splitlines()
    assert len([line for line in lines if "GET /health" in line]) == 1, lines
    missing_lines = [line for line in lines if missing in line]
    assert len(missing_lines) == 2, missing_lines
    assert len([line for line in missing_lines if "Not Found" in line]) == 1, missing_lines


async def test_noreload_server_logs_once_and_drains_on_sigterm(tmp_path, demo_database):
    """``runserver --noreload`` serves from the main thread: SIGTERM closes sockets with 1001 first."""
    env = readme_env(tmp_path, demo_database)
    server = RunServer(env, reload=False)
    try:
        await asyncio.to_thread(assert_each_request_logged_once, server)
        token = await asyncio.to_thread(login, server, "alice", "alice-demo-pass")
        async with websockets.connect(f"{server.url}?token={token}") as ws:
            await next_of_type(ws, "welcome")
            server.proc.terminate()
            error = await next_of_type(ws, "error", timeout=15)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 15)
        assert error["error"]["code"] == "going_away"
        assert closed.value.rcvd.code == 1001
        assert await asyncio.to_thread(server.proc.wait, 15) == 0
        assert "Traceback" not in server.output()
    finally:
        server.stop()
