"""
The database locked for a moment (issue 8): a chat.send gets a retryable `unavailable` error and
stores nothing, never an ack; the retry with the same client_msg_id, once the lock is gone, is
stored exactly once. Runs on SQLite (a writer holding the database lock) and on PostgreSQL (a
transaction holding the conversation's row lock).
"""

import asyncio
import json
import os
import threading
import time

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.db import connections, transaction

from chat.models import Conversation, Message
from tests.e2e.helpers import login, next_of_type, request
from tests.servers import Daphne, database_url

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def daphne_waiting_for_locks(lock_wait_s: float) -> Daphne:
    """A Daphne whose database gives up on a lock after ``lock_wait_s`` (SQLite and PostgreSQL alike)."""
    from django.db import connection

    return Daphne(
        {
            "DATABASE_URL": database_url(connection.settings_dict),
            "REDIS_URL": os.environ["REDIS_URL"],
            "DATABASE_SQLITE_TIMEOUT_S": str(lock_wait_s),
            "DATABASE_LOCK_TIMEOUT_MS": str(int(lock_wait_s * 1000)),
            "REALTIME_OVERRIDES": json.dumps(
                {"CONNECTIONS_PER_IP_PER_MIN": 10_000, "CONNECTIONS_PER_IP_PER_S": 10_000}
            ),
        }
    )


@pytest.fixture
def server(django_db_setup):
    daphne = daphne_waiting_for_locks(0.5)
    yield daphne
    daphne.stop()


def hold_write_lock(conversation_id: int, locked: threading.Event, release: threading.Event) -> None:
    """In a thread of its own: hold the lock a sender needs until ``release`` is set."""
    try:
        with transaction.atomic():  # SQLite: BEGIN IMMEDIATE takes the database's write lock
            Conversation.objects.select_for_update().get(pk=conversation_id)  # PostgreSQL: the row lock
            locked.set()
            release.wait(30)
    finally:
        connections.close_all()


async def test_a_send_while_the_database_is_locked_is_refused_then_retried_once(server, alice, conversation):
    token = await asyncio.to_thread(login, server, "alice", "alice-pass")
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(conversation.pk, locked, release))
    async with websockets.connect(f"{server.url}?token={token}") as ws:
        await next_of_type(ws, "welcome")
        holder.start()
        assert await asyncio.to_thread(locked.wait, 10)
        data = {"conversation_id": conversation.pk, "content": "while locked", "client_msg_id": "locked-1"}
        refused = await request(ws, "chat.send", data, ref="1")
        assert refused["type"] == "error" and refused["error"]["code"] == "unavailable"
        assert await sync_to_async(Message.objects.count)() == 0
        release.set()
        await asyncio.to_thread(holder.join, 10)
        retried = await request(ws, "chat.send", data, ref="2")
        assert retried["type"] == "ack" and retried["data"]["duplicate"] is False
        again = await request(ws, "chat.send", data, ref="3")
        assert again["data"]["duplicate"] is True
    assert await sync_to_async(list)(Message.objects.values_list("content", flat=True)) == ["while locked"]


@pytest.fixture
def patient_server(django_db_setup):
    """A server whose database waits 5 s for a lock before giving up (a long stall, not an error)."""
    daphne = daphne_waiting_for_locks(5)
    yield daphne
    daphne.stop()


async def test_ping_is_answered_while_a_send_waits_on_the_locked_database(patient_server, alice, conversation):
    token = await asyncio.to_thread(login, patient_server, "alice", "alice-pass")
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(conversation.pk, locked, release))
    async with websockets.connect(f"{patient_server.url}?token={token}") as ws:
        await next_of_type(ws, "welcome")
        holder.start()
        try:
            assert await asyncio.to_thread(locked.wait, 10)
            await ws.send(
                json.dumps(
                    {
                        "type": "chat.send",
                        "ref": "send",
                        "data": {
                            "conversation_id": conversation.pk,
                            "content": "stalled",
                            "client_msg_id": "stalled-1",
                        },
                    }
                )
            )
            await ws.send(json.dumps({"type": "ping", "ref": "ping"}))
            sent_at = time.monotonic()
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            waited = time.monotonic() - sent_at
            # The pong overtakes the send's reply, which waits for the lock (up to 5 s).
            assert (first["type"], first["ref"]) == ("pong", "ping")
            assert waited < 1.0, f"pong after {waited:.2f} s"
        finally:
            release.set()
            await asyncio.to_thread(holder.join, 10)
        reply = await next_of_type(ws, "ack", timeout=15)
        assert reply["ref"] == "send"
    assert await sync_to_async(list)(Message.objects.values_list("content", flat=True)) == ["stalled"]
