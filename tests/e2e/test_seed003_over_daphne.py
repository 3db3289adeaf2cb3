"""
Seed 003's clients with the real socket.io-client (4.8, from npm: tests/e2e/socketio_client/)
against the two shared Daphne processes on one Redis: clients on each process join one game room
and each one's message reaches every member once (``except`` skips the sender); the token order
(auth, ?token=, Bearer); a forged and a missing token refused with a connect error; a message over
1 MB drops only its socket; a forbidden room publish answered in the seed's error shape; a socket
that polls, then upgrades, gets every room message once and in order across its switch to the
server's direct writer.
"""

import json
import os
import subprocess

import pytest

from conftest import access_token
from tests.servers import BASE_DIR

pytestmark = [pytest.mark.any_database, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CLIENT_DIR = BASE_DIR / "tests" / "e2e" / "socketio_client"


@pytest.fixture(scope="session")
def socketio_client():
    """The client's node_modules, installed from its package-lock.json when missing (``npm ci``)."""
    if not (CLIENT_DIR / "node_modules" / "socket.io-client").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=CLIENT_DIR, check=True, timeout=300)
    return CLIENT_DIR / "scenario.mjs"


def test_seed003_clients_over_two_processes(daphnes, socketio_client, alice, bob, carol):
    scenario = {
        "urls": [server.http for server in daphnes],
        "path": "/compat/003/socket.io/",
        "tokens": {user.username: access_token(user) for user in (alice, bob, carol)},
        "room": "game:e2e",
    }
    run = subprocess.run(
        ["node", str(socketio_client)],
        env={"PATH": os.environ["PATH"], "SCENARIO": json.dumps(scenario)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr + "".join(server.output()[-3000:] for server in daphnes)
    seen = json.loads(run.stdout)

    assert all("id" in connect for connect in seen["connect"]), seen["connect"]
    assert seen["join_a"] == seen["join_b"] == seen["join_c"] == {"status": "ok", "roomId": "game:e2e"}
    assert seen["send"] == {"status": "ok", "roomId": "game:e2e"}
    # Each member saw the vote once, with who sent it: alice's token came from `auth`, over the others.
    for votes in seen["votes"]:
        assert len(votes) == 1, seen["votes"]
        assert votes[0]["data"] == {"n": 1} and votes[0]["meta"]["room"] == "game:e2e"
        assert votes[0]["meta"]["from"]["id"] == alice.pk
    # `except`: not to the sender. Bob's token came from ?token= (over Bearer), carol's from Bearer.
    assert seen["moves"] == [sorted([bob.pk, carol.pk]), [carol.pk], [bob.pk]]
    assert seen["forbidden"]["status"] == "error" and seen["forbidden"]["code"] == "forbidden"
    assert seen["exceptions"] == [seen["forbidden"]]
    # The socket that polled, then upgraded: every room message once, in order, whether it came
    # over polling, during the upgrade (engine.io's queue, then the server's direct writer) or after.
    assert seen["connect_d"].get("id") and seen["join_d"]["status"] == "ok"
    assert seen["upgraded_to"] == "websocket"
    numbers = [n for n, _ in seen["sequence"]]
    assert numbers == list(range(seen["published"])), numbers
    transports = [transport for _, transport in seen["sequence"]]
    assert set(transports[:11]) == {"polling"} and set(transports[-6:]) == {"websocket"}, transports
    forged, anonymous = seen["refused"]
    assert forged["data"]["code"] == anonymous["data"]["code"] == "unauthorized"
    assert anonymous["error"].startswith("Send an access token")
    assert seen["too_big"] == "transport close"
    assert seen["big_seen"] == [0, 0] and seen["after_seen"] == 1
