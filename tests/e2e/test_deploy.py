"""The production files in deploy/ work as shipped: Django's deploy checks and the Daphne unit's flags."""

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import uuid

import pytest
import websockets

from tests.e2e.helpers import login, next_of_type
from tests.servers import BASE_DIR, Daphne, database_url

pytestmark = [pytest.mark.any_database, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def unit_daphne_args() -> list[str]:
    """The Daphne options of deploy/switchboard-daphne@.service's ExecStart, without bind, port and app."""
    unit = (BASE_DIR / "deploy" / "switchboard-daphne@.service").read_text()
    exec_start = re.search(r"^ExecStart=(.*?)(?<!\\)$", unit, flags=re.MULTILINE | re.DOTALL).group(1)
    args = exec_start.replace("\\\n", " ").split()[1:]
    args.remove("config.asgi:application")
    for flag in ("--bind", "--port"):
        del args[args.index(flag) : args.index(flag) + 2]
    return args


def test_check_deploy_is_clean_with_debug_off():
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "chat.example.com",
        "REDIS_URL": os.environ["REDIS_URL"],
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


async def test_daphne_with_the_units_flags_answers_1009_for_a_frame_over_the_application_limit(alice):
    from django.db import connection

    args = unit_daphne_args()
    assert "--ping-interval" in args and "--proxy-headers" in args
    # The production limits stay on; a private key prefix keeps the per-IP connection count (60 a
    # minute from 127.0.0.1, shared in Redis) from including the connections of the tests before.
    env = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": os.environ["REDIS_URL"],
        "LOG_FORMAT": "json",
        "REALTIME_OVERRIDES": json.dumps({"KEY_PREFIX": f"deploy-{uuid.uuid4().hex[:8]}"}),
    }
    server = Daphne(env, args)
    try:
        token = await asyncio.to_thread(login, server, "alice", "alice-pass")
        async with websockets.connect(f"{server.url}?token={token}", max_size=None) as ws:
            await next_of_type(ws, "welcome")
            await ws.send(json.dumps({"type": "ping", "data": {"pad": "x" * 1_500_000}}))  # < Daphne's 2 MiB
            assert (await next_of_type(ws, "error"))["error"]["code"] == "message_too_big"
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1009
        # Production logs are JSON lines, one per event, with the connection id and no token.
        await asyncio.sleep(0.2)
        lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
        events = [line["message"].split(" ")[0] for line in lines if line["logger"] == "realtime.connections"]
        assert events[:3] == ["connect", "session", "limit"] and "disconnect" in events
        assert token not in server.output()
    finally:
        server.stop()
