"""A batch task end to end: queued in the database, run by a real `db_worker` process, watched
over a real socket on Daphne, downloaded over HTTP."""

import asyncio
import io
import json
import os
import urllib.request
import zipfile

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile

from progress import services
from progress.tests.conftest import docx_template
from tests.e2e.helpers import login, next_of_type
from tests.servers import BatchWorker, Daphne, database_url

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def test_worker_process_generates_documents_that_a_subscriber_watches_and_downloads(alice, settings, tmp_path):
    from django.db import connection

    settings.MEDIA_ROOT = tmp_path / "media"
    env = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": os.environ["REDIS_URL"],
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    server, worker = Daphne(env), BatchWorker(env)
    try:
        token = await asyncio.to_thread(login, server, "alice", "alice-pass")
        rows = "name,city\n" + "".join(f"Person {i},Town {i}\n" for i in range(30)) + "Nobody\n"
        template = docx_template("Dear {{ name }} of {{ city }}")
        async with websockets.connect(f"{server.url}?token={token}") as ws:
            await next_of_type(ws, "welcome")
            task = await sync_to_async(services.create_task)(
                owner=alice,
                name="letters",
                data_file=SimpleUploadedFile("people.csv", rows.encode()),
                template=SimpleUploadedFile("letter.docx", template),
            )
            await ws.send(json.dumps({"type": "task.subscribe", "ref": "s", "data": {"task_ids": [task.pk]}}))
            events = []
            async with asyncio.timeout(30):
                while not events or events[-1]["type"] not in ("task.completed", "task.failed"):
                    frame = json.loads(await ws.recv())
                    if frame["type"].startswith("task."):
                        events.append(frame)
        types = [e["type"] for e in events]
        assert types[0] == "task.started" and types[-1] == "task.completed", worker.output()[-2000:]
        assert types.count("task.document_generated") == 30 and types.count("task.document_failed") == 1
        failed = next(e for e in events if e["type"] == "task.document_failed")["data"]
        assert failed["index"] == 30 and failed["error"] == "Missing field: 'city' is undefined"
        final = events[-1]["data"]
        assert (final["succeeded"], final["failed"], final["progress"]) == (30, 1, 100.0)
        progress = [e["data"]["progress"] for e in events if e["type"] == "task.progress"]
        assert progress == sorted(progress)

        request = urllib.request.Request(
            f"{server.http}/api/tasks/{task.pk}/download", headers={"Authorization": f"Bearer {token}"}
        )
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=10).read())
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            assert len(archive.namelist()) == 30
    finally:
        server.stop()
        worker.stop()
