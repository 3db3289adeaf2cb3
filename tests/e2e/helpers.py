"""What the end-to-end tests do as a real client: log in over REST, wait for frames, send commands."""

import asyncio
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from chat.management.commands.chat_client import Credentials
from tests.servers import BASE_DIR


def wait_until(condition, timeout: float, what: str) -> None:
    """Poll ``condition()`` every 0.1 s until it is true; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def login(server, username: str, password: str) -> str:
    """Obtain an access token from ``POST /api/auth/token/``, the way ``chat_client`` does."""
    return Credentials(server.http, username, password).log_in()


class ChatClient:
    """``manage.py chat_client`` in a subprocess, as a person runs it: type lines on stdin, read what it prints."""

    def __init__(self, base_url: str, username: str, password: str, conversation_id: int, env: dict | None = None):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "chat_client",
                "--url",
                base_url,
                "--username",
                username,
                "--password",
                password,
                "--conversation",
                str(conversation_id),
            ],
            cwd=BASE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []  # everything printed so far, filled by a reader thread
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 15) -> str:
        """Return the first printed line containing ``text``; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.lines):
                if text in line:
                    return line
            if time.monotonic() > deadline or self.proc.poll() is not None and not self._more_to_read():
                raise AssertionError(f"{text!r} not printed within {timeout} s; output so far: {self.lines}")
            time.sleep(0.05)

    def _more_to_read(self) -> bool:
        # After the process exits, its last lines may still be on their way through the reader thread.
        count = len(self.lines)
        time.sleep(0.2)
        return len(self.lines) != count

    def type(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def quit(self) -> int:
        """Close stdin (end of input) and return the exit code."""
        self.proc.stdin.close()
        return self.proc.wait(30)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


async def next_of_type(ws, frame_type: str, timeout: float = 5) -> dict:
    """Return the next frame of ``frame_type`` from a ``websockets`` connection, skipping others."""
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == frame_type:
                return frame


async def request(ws, frame_type: str, data: dict, ref: str) -> dict:
    """Send a command and return its reply (the next frame carrying ``ref``)."""
    await ws.send(json.dumps({"type": frame_type, "ref": ref, "data": data}))
    async with asyncio.timeout(5):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("ref") == ref:
                return frame


def metric(server, sample: str) -> float:
    """The value of ``sample`` (its name and labels as /metrics prints them) on ``server``; 0 when absent."""
    with urllib.request.urlopen(f"{server.http}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(sample + " "):
                return float(line.split()[-1])
    return 0.0


def get_json(url: str, token: str | None = None) -> tuple[int, dict]:
    """``GET url`` (with a Bearer token when given) -> ``(status, JSON body)``, also for 4xx/5xx."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)
