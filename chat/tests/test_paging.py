"""chat.conversations and chat.history page with limit and cursor (docs/protocol.md, "Lists")."""

import base64

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.test import Client as DjangoClient

from chat.models import Conversation, Membership, Message


def conversations_of(user, last_seqs: list[int]) -> list[int]:
    """Group conversations of ``user`` with those ``last_seq``s; return their ids in list order
    (``last_seq`` descending, then id descending)."""
    made = []
    for n, last_seq in enumerate(last_seqs):
        conversation = Conversation.objects.create(kind=Conversation.Kind.GROUP, title=f"c{n}", last_seq=last_seq)
        Membership.objects.create(conversation=conversation, user=user)
        made.append(conversation)
    return [c.pk for c in sorted(made, key=lambda c: (-c.last_seq, -c.pk))]


def messages_in(conversation, sender, count: int, content: str) -> None:
    Message.objects.bulk_create(
        [Message(conversation=conversation, sender=sender, content=content, seq=seq) for seq in range(1, count + 1)]
    )
    Conversation.objects.filter(pk=conversation.pk).update(last_seq=count)


async def every_page(client, frame_type: str, key: str, data: dict) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        reply = await client.request(frame_type, {**data, "cursor": cursor}, ref=f"p{len(pages)}")
        assert reply["type"] == "ack", reply
        page = reply["data"]
        assert page["has_more"] == (page["next_cursor"] is not None)
        pages.append(page[key])
        if page["next_cursor"] is None:
            return pages
        cursor = page["next_cursor"]


async def test_conversations_page_in_order_each_once(connect, alice, bob):
    # Ties on last_seq are broken by id (descending), so no conversation is lost between pages.
    order = await sync_to_async(conversations_of)(alice, [5, 0, 9, 5, 5, 0, 2, 9])
    client = await connect(user=alice)
    pages = await every_page(client, "chat.conversations", "conversations", {"limit": 3})
    assert [len(page) for page in pages] == [3, 3, 2]
    assert [c["id"] for page in pages for c in page] == order


async def test_conversations_default_page(connect, alice):
    order = await sync_to_async(conversations_of)(alice, [1, 2])
    client = await connect(user=alice)
    reply = await client.request("chat.conversations", {})
    assert [c["id"] for c in reply["data"]["conversations"]] == order
    assert (reply["data"]["next_cursor"], reply["data"]["has_more"]) == (None, False)


def b64(value) -> str:
    """A hand-made cursor: base64url (no padding) of ``value`` as JSON."""
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


@pytest.mark.parametrize(
    ("frame_type", "cursor"),
    [
        ("chat.conversations", "garbage"),
        ("chat.conversations", 7),
        ("chat.conversations", b64(["conversations", "x", 1])),  # a key that is not a number
        ("chat.conversations", b64(["conversations", 1])),  # too short
        ("chat.conversations", b64(["history", 1])),  # another list's
        ("chat.history", "garbage"),
        ("chat.history", b64(["history", -1])),
        ("chat.history", b64(["conversations", 1, 1])),
    ],
)
async def test_a_malformed_cursor_is_invalid(connect, alice, conversation, frame_type, cursor):
    client = await connect(user=alice)
    reply = await client.request(frame_type, {"conversation_id": conversation.pk, "cursor": cursor})
    assert reply["error"]["code"] == "invalid", reply
    assert "cursor" in reply["error"]["details"]


async def test_history_pages_back_with_next_cursor(connect, alice, bob, conversation):
    await sync_to_async(messages_in)(conversation, bob, 7, "hi")
    client = await connect(user=alice)
    seqs, cursor = [], None
    while True:
        data = {"conversation_id": conversation.pk, "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.request("chat.history", data, ref=f"h{len(seqs)}"))["data"]
        seqs = [m["seq"] for m in page["messages"]] + seqs
        assert page["has_more"] == (page["next_cursor"] is not None)
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seqs == list(range(1, 8))
    both = await client.request(
        "chat.history", {"conversation_id": conversation.pk, "before_seq": 3, "cursor": cursor}, ref="x"
    )
    assert both["error"]["code"] == "invalid"


async def test_history_and_resume_pages_are_cut_to_fit_a_frame(connect, alice, bob, conversation, settings):
    # 100 messages of 4,000 four-byte characters are 1.6 MB: more than one frame may hold.
    await sync_to_async(messages_in)(conversation, bob, 100, "\U0001f600" * 4000)
    limit = 1_000_000
    client = await connect(user=alice)
    seqs, before = [], None
    while True:
        data = {"conversation_id": conversation.pk, "limit": 100, **({"before_seq": before} if before else {})}
        reply = await client.request("chat.history", data, ref=f"h{len(seqs)}")
        assert reply["type"] == "ack", reply["error"]
        assert len(orjson.dumps(reply)) < limit
        page = reply["data"]
        seqs = [m["seq"] for m in page["messages"]] + seqs
        if not page["has_more"]:
            break
        before = page["messages"][0]["seq"]
    assert seqs == list(range(1, 101))
    resumed, after = [], 0
    while True:
        reply = await client.request(
            "chat.join", {"conversation_id": conversation.pk, "after_seq": after}, ref=f"j{after}"
        )
        assert reply["type"] == "ack", reply["error"]
        assert len(orjson.dumps(reply)) < limit
        resumed += [m["seq"] for m in reply["data"]["messages"]]
        if not reply["data"]["has_more"]:
            break
        after = resumed[-1]
    assert resumed == list(range(1, 101))


@pytest.mark.django_db(transaction=True)
def test_rest_conversations_and_messages_page_like_the_socket(alice, bob, conversation):
    order = conversations_of(alice, [4, 4, 1])
    messages_in(conversation, bob, 5, "hi")
    api = DjangoClient()
    api.force_login(alice)
    seen, url = [], "/api/chat/conversations/?limit=2"
    while url:
        page = api.get(url).json()
        seen += [c["id"] for c in page["conversations"]]
        url = page["next_cursor"] and f"/api/chat/conversations/?limit=2&cursor={page['next_cursor']}"
    assert seen == [conversation.pk, *order]
    assert api.get("/api/chat/conversations/?cursor=nope").status_code == 400
    seqs, url = [], f"/api/chat/conversations/{conversation.pk}/messages/?limit=2"
    while url:
        page = api.get(url).json()
        seqs = [m["seq"] for m in page["messages"]] + seqs
        url = (
            page["next_cursor"]
            and f"/api/chat/conversations/{conversation.pk}/messages/?limit=2&cursor={page['next_cursor']}"
        )
    assert seqs == [1, 2, 3, 4, 5]
