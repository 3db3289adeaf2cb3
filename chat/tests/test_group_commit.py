"""
``chat.send``'s group commit over /ws/ (realtime.delivery.group_commit), on the memory and Redis layers:
sends that arrive while a batch commits are stored together, each is answered on its own, and
every sender sees its ack before the events its send caused.
"""

from asgiref.sync import sync_to_async

from chat import services
from chat.models import Message
from chat.tests.batching import HeldFirstBatch


def send_data(conversation, content, **extra):
    return {"conversation_id": conversation.pk, "content": content, **extra}


async def frames_until_quiet(client) -> list[dict]:
    frames = []
    while not await client.communicator.receive_nothing(timeout=0.3):
        frames.append(await client.receive())
    return frames


async def test_sends_arriving_during_a_commit_share_the_next_one_and_are_answered_each(
    connect, alice, bob, carol, conversation, monkeypatch
):
    batch = HeldFirstBatch(monkeypatch, services, "send_many", calls=6)
    first, again, retry, from_bob, blank = [await connect(user=u) for u in (alice, alice, alice, bob, bob)]
    outsider = await connect(user=carol)

    try:
        await first.send({"type": "chat.send", "ref": "first", "data": send_data(conversation, "first")})
        await batch.held()
        # While the first batch is in the database, five more connections send.
        await again.send({"type": "chat.send", "ref": "k", "data": send_data(conversation, "keyed", client_msg_id="k")})
        await retry.send(
            {"type": "chat.send", "ref": "k2", "data": send_data(conversation, "keyed", client_msg_id="k")}
        )
        await from_bob.send({"type": "chat.send", "ref": "b", "data": send_data(conversation, "from bob")})
        await blank.send({"type": "chat.send", "ref": "x", "data": send_data(conversation, "   ")})
        await outsider.send({"type": "chat.send", "ref": "o", "data": send_data(conversation, "let me in")})
        await batch.queued()
    finally:
        batch.release()

    streams = {
        name: await frames_until_quiet(client)
        for name, client in {
            "first": first,
            "again": again,
            "retry": retry,
            "bob": from_bob,
            "blank": blank,
            "outsider": outsider,
        }.items()
    }
    batches = [[request.content for request in requests] for requests in batch.batches]
    assert batches[0] == ["first"]
    assert len(batches) == 2 and sorted(batches[1]) == [
        "from bob",
        "keyed",
        "keyed",
        "let me in",
    ]  # blank: refused before

    def reply(name, ref):
        (frame,) = [f for f in streams[name] if f.get("ref") == ref]
        return frame

    assert reply("blank", "x")["error"]["code"] == "invalid"
    assert reply("outsider", "o")["error"]["code"] == "not_found"
    keyed, repeat = reply("again", "k")["data"], reply("retry", "k2")["data"]
    assert keyed["duplicate"] is False and repeat == {"message": keyed["message"], "duplicate": True}

    stored = await sync_to_async(list)(Message.objects.order_by("seq").values_list("seq", "content"))
    assert [content for _, content in stored] == ["first", *dict.fromkeys(c for c in batches[1] if c != "let me in")]
    assert [seq for seq, _ in stored] == [1, 2, 3]
    for name in ("first", "again", "retry", "bob", "blank"):
        events = [f["data"]["seq"] for f in streams[name] if f["type"] == "chat.message"]
        assert events == [1, 2, 3], name  # every member connection, each message once, in order
    assert [f["type"] for f in streams["outsider"]] == ["error"]
    # Each sender's ack comes before the events of its own batch.
    for name, ref in (("first", "first"), ("again", "k"), ("retry", "k2"), ("bob", "b")):
        acked_seq = reply(name, ref)["data"]["message"]["seq"]
        position = streams[name].index(reply(name, ref))
        batch_events = [
            i
            for i, f in enumerate(streams[name])
            if f["type"] == "chat.message" and (f["data"]["seq"] == 1) == (acked_seq == 1)
        ]
        assert position < min(batch_events), (name, streams[name])
