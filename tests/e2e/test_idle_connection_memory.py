"""
What an idle authenticated connection costs a Daphne process (issue 25, memory): the Python heap
it adds, measured as ``make bench-heap`` does (tracemalloc in the server: bench/heap_probe). This
test measured 29 KB before the per-connection objects were trimmed (realtime/servers/daphne/
application_queue.py and protocol_state.py, the consumer's slots, the routers that hand over) and
16 KB after. The bound leaves room for noise (tables that grow while connections open) and fails
if one of those comes undone.
"""

import asyncio
import json
import os
import signal
import time
import tracemalloc
from pathlib import Path

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken

from tests.e2e.helpers import next_of_type
from tests.servers import BASE_DIR, Daphne, database_url

pytestmark = [pytest.mark.any_database, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PROBE_DIR = BASE_DIR / "bench" / "heap_probe"
CONNECTIONS = 100
BOUND_KB = 20


@sync_to_async
def access_tokens(count: int) -> list[str]:
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"idle{i}", password="!") for i in range(count)]
    )
    return [str(AccessToken.for_user(user)) for user in users]


def heap_bytes(server: Daphne, out: str, number: int) -> int:
    """Ask the server's probe for a tracemalloc snapshot; return the bytes it counts."""
    server.proc.send_signal(signal.SIGUSR2)
    target = Path(f"{out}.{number}")
    deadline = time.monotonic() + 60
    while not target.exists():  # renamed into place once written whole
        assert time.monotonic() < deadline, "the server's heap probe did not answer"
        time.sleep(0.1)
    snapshot = tracemalloc.Snapshot.load(str(target))
    snapshot = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    return sum(stat.size for stat in snapshot.statistics("filename"))


async def open_welcomed(server: Daphne, tokens: list[str]) -> list:
    connections = []
    for token in tokens:
        ws = await websockets.connect(f"{server.url}?token={token}")
        await next_of_type(ws, "welcome", 30)
        connections.append(ws)
    return connections


async def test_an_idle_authenticated_connection_adds_under_20_kb_of_python_heap(tmp_path):
    from django.db import connection

    tokens = await access_tokens(2 * CONNECTIONS)
    out = str(tmp_path / "heap")
    server = Daphne(
        {
            "DATABASE_URL": database_url(connection.settings_dict),
            "REDIS_URL": os.environ["REDIS_URL"],
            "PYTHONPATH": str(PROBE_DIR),
            "HEAP_PROBE_OUT": out,
            "HEAP_PROBE_DEPTH": "1",  # totals only: the least tracemalloc slows the server
            "REALTIME_OVERRIDES": json.dumps(
                {"CONNECTIONS_PER_IP_PER_MIN": 10_000, "CONNECTIONS_PER_IP_PER_S": 10_000}
            ),
        }
    )
    opened = []
    try:
        # The first ones also load modules and fill caches: measured are the next ones.
        opened += await open_welcomed(server, tokens[:CONNECTIONS])
        await asyncio.sleep(1)
        before = await asyncio.to_thread(heap_bytes, server, out, 1)
        opened += await open_welcomed(server, tokens[CONNECTIONS:])
        await asyncio.sleep(1)
        after = await asyncio.to_thread(heap_bytes, server, out, 2)
    finally:
        for ws in opened:
            await ws.close()
        server.stop()

    per_connection_kb = (after - before) / CONNECTIONS / 1024
    assert per_connection_kb < BOUND_KB, f"{per_connection_kb:.1f} KB of Python heap per idle connection"
