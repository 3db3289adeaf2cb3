"""
Who may do what in chat, over the socket and REST (docs/protocol.md, "Chat"): members; staff for
support conversations; nobody else. A refusal reveals nothing: a conversation one may not see
answers exactly like an unknown id, not_found with the same message (docs/protocol.md, "not_found
or forbidden"), and neither carries its data.
"""

import pytest
from django.test import Client as DjangoClient

from chat import services
from chat.models import Message

pytestmark = pytest.mark.django_db(transaction=True)

# Every chat command that names a conversation, with valid data for it.
COMMANDS = {
    "chat.join": lambda cid: {"conversation_id": cid, "after_seq": 0},
    "chat.leave": None,  # leaving the viewers of a conversation one cannot see changes nothing: always acked
    "chat.history": lambda cid: {"conversation_id": cid},
    "chat.send": lambda cid: {"conversation_id": cid, "content": "x"},
    "chat.read": lambda cid: {"conversation_id": cid, "seq": 1},
    "chat.typing": lambda cid: {"conversation_id": cid},
    "chat.add_member": lambda cid: {"conversation_id": cid, "user_id": 1},
    "chat.remove_member": lambda cid: {"conversation_id": cid, "user_id": 10**9},
    "chat.change_role": lambda cid: {"conversation_id": cid, "user_id": 10**9, "role": "admin"},
}


@pytest.fixture
def world(alice, bob, carol, make_user):
    """alice+bob in a group and a direct conversation; alice's support conversation; carol outside; a staff agent."""
    staff = make_user("agent", is_staff=True)
    group = services.create_group(owner=alice, title="g", member_ids=[bob.pk])
    direct = services.send_as(alice, recipient_id=bob.pk, content="hi")[0].conversation
    support, _ = services.open_support(user=alice)
    services.send_message(sender=alice, conversation=support, content="help")
    return {"group": group, "direct": direct, "support": support, "staff": staff}


def expected(who: str, kind: str) -> str:
    """ok / not_found (not theirs to see) for a read or send by ``who`` in a conversation of ``kind``."""
    if who == "member":
        return "ok"
    if who == "staff" and kind == "support":
        return "ok"
    return "not_found"


# Access does not depend on the channel layer: the in-memory one keeps the matrix quick.
@pytest.mark.parametrize("channel_layer", ["memory"], indirect=True)
@pytest.mark.parametrize("command", [c for c, data in COMMANDS.items() if data])
@pytest.mark.parametrize("kind", ["group", "direct", "support"])
@pytest.mark.parametrize("who", ["member", "outsider", "staff"])
async def test_socket_commands(connect, world, alice, carol, command, kind, who):
    from asgiref.sync import sync_to_async

    user = {"member": alice, "outsider": carol, "staff": world["staff"]}[who]
    conversation = world[kind]
    client = await connect(user=user)
    before = await sync_to_async(Message.objects.count)()
    reply = await client.request(command, COMMANDS[command](conversation.pk))
    unknown = await client.request(command, COMMANDS[command](10**9), ref="unknown")
    assert unknown["error"] == {"code": "not_found", "message": "Conversation not found"}
    if expected(who, kind) == "not_found":
        # Not theirs to see and not there: the same frame, code and message (nothing about it).
        assert reply["error"] == unknown["error"], reply
        assert {k: v for k, v in reply.items() if k != "ref"} == {k: v for k, v in unknown.items() if k != "ref"}
        assert await sync_to_async(Message.objects.count)() == before
    else:
        # Allowed past the access check: any refusal now is about the group rules, not access.
        assert reply["type"] == "ack" or reply["error"]["code"] in ("invalid", "forbidden", "not_found"), reply
        if command in ("chat.join", "chat.history", "chat.send", "chat.read", "chat.typing"):
            assert reply["type"] == "ack", reply


@pytest.mark.parametrize("kind", ["group", "direct", "support"])
@pytest.mark.parametrize("who", ["member", "outsider", "staff", "anonymous", "deactivated"])
def test_rest_paths(world, alice, carol, make_user, kind, who):
    conversation = world[kind]
    client = DjangoClient()
    if who == "deactivated":
        ghost = make_user("ghost", is_active=False)
        client.force_login(ghost)
    elif who != "anonymous":
        client.force_login({"member": alice, "outsider": carol, "staff": world["staff"]}[who])

    def call(conversation_id: int) -> dict:
        base = f"/api/chat/conversations/{conversation_id}"
        return {
            "detail": client.get(f"{base}/"),
            "history": client.get(f"{base}/messages/"),
            "send": client.post(f"{base}/messages/", {"content": "x"}, content_type="application/json"),
            "read": client.post(f"{base}/read", {"seq": 1}, content_type="application/json"),
            "add_member": client.post(f"{base}/members/", {"user_id": carol.pk}, content_type="application/json"),
            "member_role": client.patch(
                f"{base}/members/{alice.pk}/", {"role": "admin"}, content_type="application/json"
            ),
            "remove_member": client.delete(f"{base}/members/{alice.pk}/"),
        }

    responses = call(conversation.pk)
    unknown = call(10**9)
    statuses = {name: r.status_code for name, r in responses.items()}
    if who in ("anonymous", "deactivated"):
        assert set(statuses.values()) <= {401, 403}
        assert all("messages" not in r.content.decode() for r in responses.values())
    elif expected(who, kind) == "not_found":
        # Not theirs to see answers exactly like an unknown id: 404 and the same body.
        assert set(statuses.values()) == {404}
        for name, response in responses.items():
            assert (
                response.json()
                == unknown[name].json()
                == {"error": {"code": "not_found", "message": "Conversation not found"}}
            ), name
    else:
        # Past the access check, the group rules answer the member changes (direct, support: invalid;
        # the owner's own role: invalid).
        assert {k: v for k, v in statuses.items() if "member" not in k} == {
            "detail": 200,
            "history": 200,
            "send": 201,
            "read": 200,
        }
        assert statuses["add_member"] in (201, 400) and statuses["remove_member"] in (204, 400)
        assert statuses["member_role"] == 400
    assert client.get("/api/chat/conversations/999999999/messages/").status_code in (
        (401, 403) if who in ("anonymous", "deactivated") else (404,)
    )
