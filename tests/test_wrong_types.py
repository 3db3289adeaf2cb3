"""
Issue 20 (items 3 and 11): data of another JSON type than docs/protocol.md gives is ``invalid``
with a message on the field, on the socket and over REST alike; it is never converted and stored
(``"conversation_id": "1"``, ``"content": 123``), and never closes the socket with 1011 (list items'
errors are keyed by string indices). Query strings and forms, where every value is text, are parsed.
"""

import pytest
from asgiref.sync import sync_to_async

from chat.models import Conversation, Membership, Message
from conftest import bearer_client
from realtime import registry
from realtime.errors import Invalid
from workspaces import services as workspace_services

pytestmark = [pytest.mark.any_database, pytest.mark.django_db(transaction=True)]

NOT_AN_INTEGER = "Must be an integer, not a string."


def invalid(ref: str, details: dict) -> dict:
    return {"type": "error", "ref": ref, "error": {"code": "invalid", "message": "Invalid data", "details": details}}


async def assert_open(client) -> None:
    await client.send({"type": "ping", "ref": "still-there"})
    assert (await client.receive_type("pong"))["ref"] == "still-there"


@pytest.fixture
def group(alice):
    conversation = Conversation.objects.create(kind=Conversation.Kind.GROUP, title="team")
    Membership.objects.create(conversation=conversation, user=alice)
    return conversation


@pytest.mark.parametrize(("member_ids", "message"), [(["x"], NOT_AN_INTEGER), ([None], "This field may not be null.")])
async def test_create_group_with_a_bad_member_id_is_invalid_and_the_socket_stays_open(
    connect, alice, member_ids, message
):
    client = await connect(user=alice)
    reply = await client.request("chat.create_group", {"title": "T", "member_ids": member_ids}, ref="g")
    assert reply == invalid("g", {"member_ids": {"0": [message]}})
    await assert_open(client)
    assert await Conversation.objects.acount() == 0


async def test_reorder_with_a_string_id_is_invalid_and_the_socket_stays_open(connect, alice):
    workspace = await sync_to_async(workspace_services.create_workspace)(owner=alice, name="One")
    client = await connect(user=alice)
    reply = await client.request("workspace.reorder", {"ids": [workspace.pk, "a"]}, ref="o")
    assert reply == invalid("o", {"ids": {"1": [NOT_AN_INTEGER]}})
    await assert_open(client)


@pytest.mark.parametrize(
    ("data", "details"),
    [
        # "1" was taken for the id and the message stored in conversation 1; 123 was stored as "123".
        (lambda pk: {"conversation_id": str(pk), "content": "hi"}, {"conversation_id": [NOT_AN_INTEGER]}),
        (lambda pk: {"conversation_id": pk, "content": 123}, {"content": ["Must be a string, not an integer."]}),
        (
            lambda pk: {"conversation_id": True, "content": "hi"},
            {"conversation_id": ["Must be an integer, not a boolean."]},
        ),
        (
            lambda pk: {"conversation_id": float(pk), "content": "hi"},
            {"conversation_id": ["Must be an integer, not a number with a fraction, an exponent or over 64 bits."]},
        ),
        (
            lambda pk: {"conversation_id": pk, "content": "hi", "content_type": 1},
            {"content_type": ["Must be a string, not an integer."]},
        ),
        (
            lambda pk: {"conversation_id": pk, "content": "hi", "client_msg_id": 7},
            {"client_msg_id": ["Must be a string, not an integer."]},
        ),
    ],
)
async def test_send_with_a_value_of_another_type_is_invalid_and_stores_nothing(connect, alice, group, data, details):
    client = await connect(user=alice)
    assert await client.request("chat.send", data(group.pk), ref="s") == invalid("s", details)
    assert await Message.objects.acount() == 0
    ack = await client.request("chat.send", {"conversation_id": group.pk, "content": "hi"}, ref="ok")
    assert ack["type"] == "ack" and ack["data"]["message"]["content"] == "hi"


async def test_a_reply_that_cannot_be_encoded_is_a_server_error_not_a_1011_close(connect, alice, monkeypatch):
    def integer_keys(ctx, data):
        raise Invalid("Invalid data", details={"ids": {0: ["bad"]}})  # a bug: orjson refuses the key

    def integer_keys_in_ack(ctx, data):
        return {1: "x"}

    monkeypatch.setitem(registry._handlers, "workspace.reorder", integer_keys)
    monkeypatch.setitem(registry._handlers, "workspace.delete", integer_keys_in_ack)
    client = await connect(user=alice)
    for frame_type in ("workspace.reorder", "workspace.delete"):
        reply = await client.request(frame_type, {}, ref=frame_type)
        assert reply["error"] == {"code": "server_error", "message": "Server error"} and reply["ref"] == frame_type
    await assert_open(client)


# -- REST: the same serializers ------------------------------------------------------------------


def post_json(user, url: str, body: dict):
    return bearer_client(user).post(url, body, content_type="application/json")


def test_rest_json_is_typed_like_the_socket(alice, group):
    created = post_json(alice, "/api/chat/conversations/", {"title": "T", "member_ids": ["x"]})
    assert created.status_code == 400
    assert created.json()["error"]["details"] == {"member_ids": {"0": [NOT_AN_INTEGER]}}
    sent = post_json(alice, "/api/chat/messages/", {"conversation_id": str(group.pk), "content": "hi"})
    assert sent.status_code == 400 and sent.json()["error"]["details"] == {"conversation_id": [NOT_AN_INTEGER]}
    caption = post_json(alice, f"/api/chat/conversations/{group.pk}/messages/", {"content": 123})
    assert caption.status_code == 400 and caption.json()["error"]["details"] == {
        "content": ["Must be a string, not an integer."]
    }
    assert Message.objects.count() == 0 and Conversation.objects.count() == 1
    reorder = bearer_client(alice).put("/api/workspaces/order/", {"ids": ["a"]}, content_type="application/json")
    assert reorder.status_code == 400 and reorder.json()["error"]["details"] == {"ids": {"0": [NOT_AN_INTEGER]}}


def test_rest_query_strings_and_forms_are_text_and_parsed(alice, group):
    client = bearer_client(alice)
    client.post(f"/api/chat/conversations/{group.pk}/messages/", {"content": "hi"}, content_type="application/json")
    page = client.get(f"/api/chat/conversations/{group.pk}/messages/", {"limit": "1"})
    assert page.status_code == 200 and len(page.json()["messages"]) == 1
    form = client.post("/api/chat/messages/", {"conversation_id": str(group.pk), "content": "by form"})  # multipart
    assert form.status_code == 201 and form.json()["message"]["conversation_id"] == group.pk


def test_rest_bodies_that_are_not_objects_are_invalid_and_forms_reach_the_id_merging_views(alice, group):
    client = bearer_client(alice)
    url = f"/api/chat/conversations/{group.pk}/messages/"
    for body in ("[1, 2]", "5", '"text"'):
        refused = client.post(url, body, content_type="application/json")
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid", body
    assert Message.objects.count() == 0
    form = client.post(url, {"content": "by form"})  # multipart: the URL's id merged in as text
    assert form.status_code == 201 and form.json()["message"]["content"] == "by form"
