"""What the end-to-end tests do as a real client: log in over REST, wait for frames, send commands."""

import asyncio
import json
import urllib.error
import urllib.request

from chat.management.commands.chat_client import obtain_token


def login(server, username: str, password: str) -> str:
    """Obtain an access token from ``POST /api/auth/token/``, the way ``chat_client`` does."""
    return obtain_token(server.http, username, password)


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


def get_json(url: str, token: str | None = None) -> tuple[int, dict]:
    """``GET url`` (with a Bearer token when given) -> ``(status, JSON body)``, also for 4xx/5xx."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)
