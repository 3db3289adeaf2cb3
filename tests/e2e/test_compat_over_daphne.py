"""
Seeds 000 and 001 end to end (docs/migration.md): clients written from the seed documents (raw
frames with ``websockets``, no project client code) run each seed's own flow on the compatibility
endpoints of the two shared Daphne processes (one Redis), next to a native client of the same
workspace or task on the other process; seed 001's tasks run in a real ``db_worker``.
"""

import asyncio
import json
import os

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile

from progress import services as progress_services
from progress.jobs import generate_documents
from progress.tests.conftest import docx_template
from tests.e2e.helpers import login, next_of_type, request
from tests.servers import BatchWorker, database_url

pytestmark = [pytest.mark.any_database, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def compat_url(server, seed: str, token: str) -> str:
    return f"ws://127.0.0.1:{server.port}/compat/{seed}/ws?token={token}"


async def receive(ws, timeout: float = 5) -> dict:
    async with asyncio.timeout(timeout):
        return json.loads(await ws.recv())


# -- seed 000: the workspace server (Node ws) ---------------------------------------------------


async def test_seed_000_workspace_flow_beside_a_native_client(daphnes, alice, bob):
    server_a, server_b = daphnes
    alice_token = await asyncio.to_thread(login, server_a, "alice", "alice-pass")
    bob_token = await asyncio.to_thread(login, server_b, "bob", "bob-pass")
    async with (
        websockets.connect(compat_url(server_a, "000", alice_token)) as seed_alice,
        websockets.connect(f"{server_b.url}?token={alice_token}") as native_alice,
        websockets.connect(compat_url(server_b, "000", bob_token)) as seed_bob,
    ):
        await next_of_type(native_alice, "welcome")
        # The seed's router: {"type": "workspace.create", ...}; its answer is the broadcast.
        await seed_alice.send(json.dumps({"type": "workspace.create", "name": "Seed plans"}))
        created = await receive(seed_alice)
        assert (created["type"], created["name"], created["version"]) == ("workspace.created", "Seed plans", 1)
        assert (await next_of_type(native_alice, "workspace.created"))["data"]["id"] == created["id"]

        share = {"id": created["id"], "user_id": bob.pk, "role": "editor"}
        assert (await request(native_alice, "workspace.share", share, "s"))["type"] == "ack"
        assert (await receive(seed_bob))["type"] == "workspace.shared"

        await seed_bob.send(
            json.dumps({"type": "workspace.update", "id": created["id"], "version": 1, "changes": {"name": "Bob's"}})
        )
        for ws in (seed_alice, seed_bob):
            updated = await next_of_type(ws, "workspace.updated")
            assert (updated["name"], updated["version"]) == ("Bob's", 2)
        assert (await next_of_type(native_alice, "workspace.updated"))["data"]["name"] == "Bob's"

        # Errors are frames ({"type": "error", "message"}), never a dropped socket.
        await seed_alice.send(
            json.dumps({"type": "workspace.update", "id": created["id"], "version": 1, "changes": {"name": "x"}})
        )
        stale = await receive(seed_alice)
        assert stale["type"] == "error" and "version" in stale["message"]
        await seed_alice.send(json.dumps({"type": "workspace.rename"}))
        assert (await receive(seed_alice))["message"] == "unknown message type: workspace.rename"
        await seed_alice.send("not json")
        assert (await receive(seed_alice))["type"] == "error"

        await seed_alice.send(json.dumps({"type": "workspace.delete", "id": created["id"]}))
        for ws in (seed_alice, seed_bob):
            assert await next_of_type(ws, "workspace.deleted") == {"type": "workspace.deleted", "id": created["id"]}
        assert (await next_of_type(native_alice, "workspace.deleted"))["data"] == {"id": created["id"]}


# -- seed 001: the progress server (ExcelMind) ---------------------------------------------------


@pytest.fixture(scope="module")
def worker(daphnes, tmp_path_factory):
    """One batch worker for this module, on the shared servers' database and Redis."""
    from django.db import connection

    media = tmp_path_factory.mktemp("compat-media")
    env = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": os.environ["REDIS_URL"],
        "MEDIA_ROOT": str(media),
    }
    process = BatchWorker(env)
    process.media = media
    yield process
    process.stop()


async def test_seed_001_progress_flow_beside_a_native_subscriber(daphnes, worker, alice, settings):
    settings.MEDIA_ROOT = worker.media
    server_a, server_b = daphnes
    token = await asyncio.to_thread(login, server_a, "alice", "alice-pass")
    # Pending and without files: both clients subscribe before the worker can start it.
    task = await sync_to_async(progress_services.create_task)(owner=alice, name="seed letters")
    async with (
        websockets.connect(compat_url(server_a, "001", token)) as seed,
        websockets.connect(f"{server_b.url}?token={token}") as native,
    ):
        connected = await receive(seed)
        assert connected["type"] == "connected" and {"payload", "timestamp", "id"} <= set(connected)
        await next_of_type(native, "welcome")
        # The seed document's own subscription, ids as strings.
        await seed.send(json.dumps({"type": "subscribe", "taskIds": [str(task.pk)], "rooms": [f"task:{task.pk}"]}))
        ack = await receive(seed)
        assert ack["type"] == "subscription_ack" and ack["payload"]["taskIds"] == [str(task.pk)]
        assert (await request(native, "task.subscribe", {"task_ids": [task.pk]}, "n"))["type"] == "ack"
        await seed.send(json.dumps({"type": "subscribe", "rooms": ["lobby"], "id": "bad"}))
        refused = await receive(seed)
        assert refused["type"] == "error" and refused["payload"]["requestId"] == "bad"

        def queue_documents():
            rows = "name\n" + "".join(f"P{i}\n" for i in range(3))
            task.data_file.save("people.csv", SimpleUploadedFile("people.csv", rows.encode()), save=False)
            task.template.save("letter.docx", SimpleUploadedFile("letter.docx", docx_template("Dear {{ name }}")))
            generate_documents.enqueue(task.pk)

        await sync_to_async(queue_documents)()
        seen = []
        async with asyncio.timeout(30):
            while not seen or seen[-1]["type"] not in ("task_completed", "task_failed"):
                seen.append(json.loads(await seed.recv()))
        types = [m["type"] for m in seen]
        assert types[0] == "task_started" and types[-1] == "task_completed", worker.output()[-2000:]
        assert types.count("document_generated") == 3
        final = seen[-1]["payload"]
        assert (final["taskId"], final["status"], final["progress"], final["current"], final["total"]) == (
            str(task.pk),
            "completed",
            100.0,
            3,
            3,
        )
        assert all({"timestamp", "id"} <= set(m) for m in seen)
        native_done = await next_of_type(native, "task.completed", timeout=10)
        assert native_done["data"]["version"] >= 1 and native_done["data"]["succeeded"] == 3

        await seed.send(json.dumps({"type": "ping"}))
        assert (await next_of_type(seed, "pong"))["type"] == "pong"
