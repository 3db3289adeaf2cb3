"""The production files in deploy/ work as shipped: Django's deploy checks and the Daphne unit's flags."""

import asyncio
import json
import os
import secrets
import subprocess
import sys
import uuid

import pytest
import websockets

from tests.deploy import unit_daphne_args
from tests.e2e.helpers import login, next_of_type
from tests.servers import BASE_DIR, Daphne, database_url

pytestmark = [pytest.mark.any_database, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def env_example() -> dict[str, str]:
    """deploy/env.example's variables: the production settings the README documents (/etc/switchboard/env)."""
    lines = (BASE_DIR / "deploy" / "env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def check_deploy(settings_env: dict[str, str]) -> subprocess.CompletedProcess:
    """``manage.py check --deploy --fail-level WARNING`` with ``settings_env`` as the only Django settings."""
    ours = {
        name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "DATABASE_", "REDIS_"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env={**ours, "DJANGO_SETTINGS_MODULE": "config.settings", **settings_env},
        capture_output=True,
        text=True,
    )


def test_check_deploy_is_clean_with_the_documented_production_settings():
    # The file as shipped, with its one placeholder replaced as its comment asks; nothing silenced.
    result = check_deploy({**env_example(), "DJANGO_SECRET_KEY": secrets.token_urlsafe(50)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues (0 silenced)" in result.stdout


def test_check_deploy_refuses_the_placeholder_secret_key():
    result = check_deploy(env_example())
    assert result.returncode != 0 and "security.W009" in result.stderr


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
