"""The chat REST API: same services, same rules, same live pushes as the socket."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client as DjangoClient
from rest_framework_simplejwt.tokens import AccessToken

from chat import services
from chat.models import Attachment, Message
from chat.tests.conftest import png_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def logged_in(user) -> DjangoClient:
    client = DjangoClient()
    client.force_login(user)
    return client


def jwt_client(user) -> DjangoClient:
    return DjangoClient(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")


def test_conversation_list_create_group_and_detail(alice, bob, carol):
    api = jwt_client(alice)
    created = api.post(
        "/api/chat/conversations/", {"title": "Team", "member_ids": [bob.pk]}, content_type="application/json"
    )
    assert created.status_code == 201
    group_id = created.json()["id"]
    services.send_message(sender=bob, conversation=services.Conversation.objects.get(pk=group_id), content="hey")
    listed = api.get("/api/chat/conversations/").json()["conversations"]
    assert [(c["id"], c["unread"], c["last_message"]["content"]) for c in listed] == [(group_id, 1, "hey")]
    assert api.get(f"/api/chat/conversations/{group_id}/").json()["title"] == "Team"
    hidden = jwt_client(carol).get(f"/api/chat/conversations/{group_id}/")
    unknown = api.get("/api/chat/conversations/999999/")
    assert hidden.status_code == unknown.status_code == 404 and hidden.json() == unknown.json()
    assert DjangoClient().get("/api/chat/conversations/").status_code in (401, 403)


def test_history_pages_with_a_cursor(alice, conversation):
    for n in range(7):
        services.send_message(sender=alice, conversation=conversation, content=f"m{n + 1}")
    api = logged_in(alice)
    seen = []
    url = f"/api/chat/conversations/{conversation.pk}/messages/?limit=3"
    while True:
        page = api.get(url).json()
        seen = [m["content"] for m in page["messages"]] + seen
        if page["next_before_seq"] is None:
            assert not page["has_more"]
            break
        url = f"/api/chat/conversations/{conversation.pk}/messages/?limit=3&before_seq={page['next_before_seq']}"
    assert seen == [f"m{n}" for n in range(1, 8)]
    assert api.get(f"/api/chat/conversations/{conversation.pk}/messages/?limit=500").status_code == 400


def test_rest_send_is_stored_as_sent_and_is_idempotent(alice, bob, conversation):
    api = logged_in(alice)
    url = f"/api/chat/conversations/{conversation.pk}/messages/"
    first = api.post(url, {"content": "<b>hi</b>", "client_msg_id": "k1"}, content_type="application/json")
    assert first.status_code == 201 and first.json()["message"]["content"] == "<b>hi</b>"
    again = api.post(url, {"content": "<b>hi</b>", "client_msg_id": "k1"}, content_type="application/json")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert Message.objects.filter(conversation=conversation).count() == 1
    blank = api.post(url, {"content": "   "}, content_type="application/json")
    assert blank.status_code == 400 and blank.json()["error"]["details"]["content"]
    direct = api.post("/api/chat/messages/", {"recipient_id": bob.pk, "content": "dm"}, content_type="application/json")
    assert direct.status_code == 201


def test_mark_read_and_members_over_rest(alice, bob, carol):
    group = services.create_group(owner=alice, title="g", member_ids=[bob.pk])
    services.send_message(sender=alice, conversation=group, content="one")
    bob_api = logged_in(bob)
    read = bob_api.post(f"/api/chat/conversations/{group.pk}/read", {"seq": 99}, content_type="application/json")
    assert read.json() == {"conversation_id": group.pk, "last_read_seq": 1, "unread": 0}
    assert (
        bob_api.post(
            f"/api/chat/conversations/{group.pk}/members/", {"user_id": carol.pk}, content_type="application/json"
        ).status_code
        == 403
    )
    owner = logged_in(alice)
    assert (
        owner.post(
            f"/api/chat/conversations/{group.pk}/members/", {"user_id": carol.pk}, content_type="application/json"
        ).status_code
        == 201
    )
    assert bob_api.delete(f"/api/chat/conversations/{group.pk}/members/{bob.pk}/").status_code == 204  # leave
    assert bob_api.get(f"/api/chat/conversations/{group.pk}/messages/").status_code == 404  # no longer his
    assert owner.delete(f"/api/chat/conversations/{group.pk}/members/{bob.pk}/").status_code == 404


def test_the_owner_changes_a_role_over_rest_and_refusals_keep_the_roles(alice, bob, carol, make_user):
    """PATCH .../members/{user_id}/ {role}: 200 with the new role for the owner; 403 forbidden for
    an admin or a member; 404 for a group one may not see (as an unknown id) and for a non-member;
    400 invalid for the owner's role, "owner" or a non-group. Refused, nothing changes."""
    dave = make_user("dave")
    group = services.create_group(owner=alice, title="g", member_ids=[bob.pk, carol.pk])
    direct = services.send_as(alice, recipient_id=bob.pk, content="hi")[0].conversation

    def patch(user, user_id: int, body, conversation_id: int = group.pk):
        return logged_in(user).patch(
            f"/api/chat/conversations/{conversation_id}/members/{user_id}/", body, content_type="application/json"
        )

    promoted = patch(alice, bob.pk, {"role": "admin"})
    assert promoted.status_code == 200
    assert promoted.json() == {"conversation_id": group.pk, "user_id": bob.pk, "role": "admin"}
    refusals = [
        (patch(bob, carol.pk, {"role": "admin"}), 403, "forbidden"),  # an admin does not name admins
        (patch(carol, bob.pk, {"role": "member"}), 403, "forbidden"),
        (patch(alice, dave.pk, {"role": "admin"}), 404, "not_found"),  # not a member
        (patch(alice, alice.pk, {"role": "member"}), 400, "invalid"),  # the owner stays owner
        (patch(alice, bob.pk, {"role": "owner"}), 400, "invalid"),
        (patch(alice, bob.pk, {}), 400, "invalid"),
        (patch(alice, bob.pk, ["admin"]), 400, "invalid"),
        (patch(alice, bob.pk, {"role": "admin"}, direct.pk), 400, "invalid"),
    ]
    for response, status, code in refusals:
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.json()
    hidden, unknown = patch(dave, bob.pk, {"role": "member"}), patch(dave, bob.pk, {"role": "member"}, 10**9)
    assert hidden.status_code == unknown.status_code == 404 and hidden.json() == unknown.json()
    assert dict(group.memberships.values_list("user_id", "role")) == {
        alice.pk: "owner",
        bob.pk: "admin",
        carol.pk: "member",
    }


def test_uploads_are_checked_and_readable_only_by_those_who_may(alice, bob, carol, conversation, media_root, settings):
    api = logged_in(alice)
    image = api.post("/api/chat/attachments/", {"file": SimpleUploadedFile("a.png", png_bytes()), "kind": "image"})
    assert image.status_code == 201, image.content
    assert image.json()["mime_type"] == "image/png"
    fake = api.post("/api/chat/attachments/", {"file": SimpleUploadedFile("x.png", b"not an image"), "kind": "image"})
    assert fake.status_code == 400 and fake.json()["error"]["details"]["file"]
    script = api.post("/api/chat/attachments/", {"file": SimpleUploadedFile("x.html", b"<script>"), "kind": "file"})
    assert script.status_code == 400
    settings.CHAT_MAX_UPLOAD_BYTES = 10
    big = api.post("/api/chat/attachments/", {"file": SimpleUploadedFile("a.txt", b"x" * 11), "kind": "file"})
    assert big.status_code == 400
    attachment_id = image.json()["id"]
    url = image.json()["url"]
    assert logged_in(bob).get(url).status_code == 404  # not sent yet: only its uploader
    api.post(
        f"/api/chat/conversations/{conversation.pk}/messages/",
        {"content_type": "image", "attachment_id": attachment_id},
        content_type="application/json",
    )
    download = logged_in(bob).get(url)
    assert download.status_code == 200 and b"".join(download.streaming_content) == png_bytes()
    hidden, unknown = logged_in(carol).get(url), logged_in(carol).get("/api/chat/attachments/999999999")
    assert hidden.status_code == unknown.status_code == 404 and hidden.json() == unknown.json()
    assert Attachment.objects.get(pk=attachment_id).file.name.startswith(f"chat/{alice.pk}/")


def test_support_over_rest_and_the_staff_queue(alice, bob, staff):
    opened = logged_in(alice).post("/api/chat/support/")
    assert opened.status_code == 201
    assert logged_in(alice).post("/api/chat/support/").status_code == 200
    services.send_message(
        sender=alice, conversation=services.Conversation.objects.get(pk=opened.json()["id"]), content="help"
    )
    bob_support = logged_in(bob).post("/api/chat/support/").json()
    queue = logged_in(staff).get("/api/chat/support/queue/").json()
    # Alice waits; bob has written nothing: alice first.
    assert [row["user"]["username"] for row in queue] == ["alice", "bob"]
    assert queue[0]["unread"] == 1 and queue[1]["conversation_id"] == bob_support["id"]
    assert logged_in(alice).get("/api/chat/support/queue/").status_code == 403
    staff_reads = logged_in(staff).get(f"/api/chat/conversations/{opened.json()['id']}/messages/")
    assert [m["content"] for m in staff_reads.json()["messages"]] == ["help"]


def test_openapi_schema_lists_the_chat_endpoints(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    for path in (
        "/api/chat/conversations/",
        "/api/chat/conversations/{id}/messages/",
        "/api/chat/attachments/",
        "/api/chat/support/",
        "/api/chat/conversations/{id}/members/{user_id}/",
    ):
        assert path in paths
    change_role = paths["/api/chat/conversations/{id}/members/{user_id}/"]["patch"]
    body = change_role["requestBody"]["content"]["application/json"]["schema"]
    assert (body["required"], body["properties"]["role"]["enum"]) == (["role"], ["member", "admin"])
