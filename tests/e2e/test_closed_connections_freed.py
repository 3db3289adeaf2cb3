"""
A WebSocket connection that ends under Daphne leaves nothing in reference cycles: its objects are
freed at once by reference counting, not kept for a full garbage collection (realtime/delivery/gc_pauses.py
freezes survivors of those; realtime/servers/daphne/close_codes.py ``free_closed_connections``).
"""

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest
import websockets

from tests.e2e.helpers import login, next_of_type
from tests.servers import Daphne, database_url

pytestmark = [pytest.mark.any_database, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PROBE_DIR = Path(__file__).resolve().parent / "gc_probe"
CONNECTIONS = 30


def cyclic_garbage(server: Daphne, probe_file: Path) -> list[str]:
    """Ask the server's probe for the type names of the objects in reference cycles right now."""
    probe_file.unlink(missing_ok=True)
    server.proc.send_signal(signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if probe_file.exists() and probe_file.read_text().endswith("done\n"):
            return probe_file.read_text().splitlines()[:-1]
        time.sleep(0.05)
    raise AssertionError("the server's garbage probe did not answer")


async def test_connections_closed_by_either_side_leave_no_reference_cycles(alice, tmp_path):
    from django.db import connection

    probe_file = tmp_path / "garbage.txt"
    server = Daphne(
        {
            "DATABASE_URL": database_url(connection.settings_dict),
            "REDIS_URL": os.environ["REDIS_URL"],
            "PYTHONPATH": str(PROBE_DIR),
            "GC_PROBE_FILE": str(probe_file),
            "REALTIME_OVERRIDES": json.dumps(
                {"GC_FREEZE": False, "CONNECTIONS_PER_IP_PER_MIN": 10_000, "CONNECTIONS_PER_IP_PER_S": 10_000}
            ),
        }
    )
    try:
        token = await asyncio.to_thread(login, server, "alice", "alice-pass")
        async with websockets.connect(f"{server.url}?token={token}") as ws:  # warm-up: imports, caches
            await next_of_type(ws, "welcome")
        await asyncio.sleep(1)
        await asyncio.to_thread(cyclic_garbage, server, probe_file)  # what start-up and the login left

        for i in range(CONNECTIONS):
            async with websockets.connect(f"{server.url}?token={token}") as ws:
                await next_of_type(ws, "welcome")
                if i % 2:  # the server closes this one: 1009 for a frame over MAX_FRAME_BYTES
                    await ws.send("x" * 1_000_001)
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        while True:
                            await ws.recv()
                    assert closed.value.rcvd.code == 1009
        await asyncio.sleep(0.5)
        garbage = await asyncio.to_thread(cyclic_garbage, server, probe_file)
    finally:
        server.stop()

    # Before the fix each connection left about 80 objects in cycles, 20 of them Daphne's,
    # Twisted's and Autobahn's. What may remain is not per connection: the login's HTTP request
    # (Daphne frees a finished HTTP application instance on a timer), caught exceptions.
    connection_objects = [
        name for name in garbage if name.split(".")[0] in ("daphne", "twisted", "autobahn", "realtime")
    ]
    assert len(connection_objects) < CONNECTIONS / 3, "\n".join(connection_objects)
