"""
Concurrent writers on the real database (SQLite by default, PostgreSQL in `make test`'s second
pass): seq stays gap-free and ordered, idempotency keys hold, one direct/support conversation.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from chat import services
from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 8


def run_concurrently(fn, count: int) -> list:
    def call(i):
        try:
            return fn(i)
        finally:
            connections.close_all()  # each worker thread has its own connection

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(call, range(count)))


def test_concurrent_senders_get_gap_free_seq_in_commit_order(alice, bob, conversation):
    senders = [alice, bob]
    messages = run_concurrently(
        lambda i: services.send_message(
            sender=senders[i % 2],
            conversation=Conversation.objects.get(pk=conversation.pk),
            content=f"m{i}",
            client_msg_id=f"k{i}",
        )[0],
        200,
    )
    stored = list(Message.objects.filter(conversation=conversation).order_by("seq").values_list("seq", "content"))
    assert [seq for seq, _ in stored] == list(range(1, 201))
    assert sorted(content for _, content in stored) == sorted(f"m{i}" for i in range(200))
    assert sorted(m.seq for m in messages) == list(range(1, 201))
    conversation.refresh_from_db()
    assert conversation.last_seq == 200
    # Creation order follows seq (ids and seq are assigned under the same lock).
    ids = [pk for (pk,) in Message.objects.filter(conversation=conversation).order_by("seq").values_list("pk")]
    assert ids == sorted(ids)


def test_concurrent_retries_of_one_send_store_it_once(alice, conversation):
    results = run_concurrently(
        lambda i: services.send_message(
            sender=alice,
            conversation=Conversation.objects.get(pk=conversation.pk),
            content="once",
            client_msg_id="same-key",
        ),
        24,
    )
    assert Message.objects.filter(conversation=conversation).count() == 1
    assert len({message.pk for message, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_concurrent_first_messages_make_one_direct_conversation(alice, bob):
    run_concurrently(
        lambda i: services.send_as([alice, bob][i % 2], recipient_id=[bob, alice][i % 2].pk, content=f"hi {i}"),
        16,
    )
    assert Conversation.objects.filter(kind="direct").count() == 1
    assert list(Message.objects.order_by("seq").values_list("seq", flat=True)) == list(range(1, 17))


def test_concurrent_support_requests_open_one_conversation(alice):
    opened = run_concurrently(lambda i: services.open_support(user=alice)[0].pk, 16)
    assert len(set(opened)) == 1
    assert Conversation.objects.filter(kind="support", support_user=alice).count() == 1
