"""POST /api/rooms/publish/ for back-end services, its API keys, and the admin's announcement page."""

import json
import re

import pytest
from asgiref.sync import sync_to_async
from django.apps import apps
from django.core.cache import cache
from django.test import Client as DjangoClient

from conftest import access_token
from realtime.tests.publishes import capture_publishes
from rooms.models import ServiceKey

URL = "/api/rooms/publish/"


@pytest.fixture
def service_key(db):
    """A fresh key: ``(ServiceKey, plain key)``."""
    cache.clear()  # the throttle's counts
    return ServiceKey.objects.create_key(name="scores")


def post(body, key=None, *, raw=False):
    headers = {"HTTP_AUTHORIZATION": f"Api-Key {key}"} if key else {}
    data = body if raw else json.dumps(body)
    return DjangoClient().post(URL, data, content_type="application/json", **headers)


def test_a_valid_key_publishes_to_one_target_and_answers_202(service_key, monkeypatch, alice):
    _, key = service_key
    published = capture_publishes(monkeypatch)

    room = post({"room": "game:1", "event": "score", "data": {"home": 2}}, key)
    user = post({"user_id": alice.pk, "event": "invoice", "data": [1, 2]}, key)
    everyone = post({"everyone": True, "event": "maintenance"}, key)

    assert room.status_code == user.status_code == everyone.status_code == 202
    assert room.json() == {
        "target": {"room": "game:1"},
        "type": "room.message",
        "data": {"room": "game:1", "event": "score", "data": {"home": 2}, "from": None, "connection_id": None},
    }
    assert user.json()["data"] == {"event": "invoice", "data": [1, 2], "to": "user"}
    assert everyone.json()["data"] == {"event": "maintenance", "data": None, "to": "everyone"}
    assert [(p.groups, p.type) for p in published] == [
        (("rooms.game.1",), "room.message"),
        ((f"realtime.user.{alice.pk}",), "server.message"),
        (("realtime.everyone",), "server.message"),
    ]
    assert ServiceKey.objects.get().last_used is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event": "x"}, "non_field_errors"),  # no target
        ({"room": "game:1", "user_id": 1, "event": "x"}, "non_field_errors"),  # two
        ({"everyone": False, "event": "x"}, "everyone"),
        ({"room": "game:1"}, "event"),
        ({"room": "game:1", "event": "two words"}, "event"),
        ({"room": "game:1", "event": 5}, "event"),
        ({"user_id": "1", "event": "x"}, "user_id"),
        ({"connection_id": "../etc", "event": "x"}, "connection_id"),
        ({"room": "a b", "event": "x"}, "room"),
    ],
)
def test_bad_bodies_answer_400_naming_the_field(service_key, monkeypatch, body, field):
    published = capture_publishes(monkeypatch)
    response = post(body, service_key[1])
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert published == []


def test_unknown_rooms_and_closed_connections_answer_404_and_non_objects_400(service_key, monkeypatch):
    published = capture_publishes(monkeypatch)
    key = service_key[1]
    assert post({"room": "nowhere", "event": "x"}, key).status_code == 404
    assert post({"connection_id": "0" * 32, "event": "x"}, key).json()["error"]["code"] == "not_found"
    assert post("[1, 2]", key, raw=True).status_code == 400
    assert post("{not json", key, raw=True).status_code == 400
    assert published == []


def test_missing_unknown_revoked_and_expired_keys_are_refused_with_401(service_key, monkeypatch, alice):
    published = capture_publishes(monkeypatch)
    obj, key = service_key
    body = {"everyone": True, "event": "x"}
    missing = post(body)
    assert missing.status_code == 401 and missing["WWW-Authenticate"] == "Api-Key"
    assert post(body, key[:-1] + ("a" if key[-1] != "a" else "b")).status_code == 401
    assert post(body, "garbage").status_code == 401
    # A user's valid access token is no service key.
    bearer = f"Bearer {access_token(alice)}"
    assert DjangoClient().post(URL, body, content_type="application/json", HTTP_AUTHORIZATION=bearer).status_code == 401
    obj.revoked = True
    obj.save()
    assert post(body, key).status_code == 401
    _, expired = ServiceKey.objects.create_key(name="old", expiry_date="2000-01-01T00:00:00Z")
    assert post(body, expired).status_code == 401
    assert published == []


def test_each_key_is_rate_limited_on_its_own(service_key, monkeypatch, settings):
    settings.ROOMS_PUBLISH_RATE = "2/min"
    capture_publishes(monkeypatch)
    body = {"everyone": True, "event": "x"}
    key = service_key[1]
    assert [post(body, key).status_code for _ in range(3)] == [202, 202, 429]
    assert post(body, ServiceKey.objects.create_key(name="other")[1]).status_code == 202


def test_a_key_created_in_the_admin_is_shown_once_and_stored_hashed(admin_client, monkeypatch):
    capture_publishes(monkeypatch)
    response = admin_client.post("/admin/rooms/servicekey/add/", {"name": "billing"}, follow=True)
    (key,) = re.findall(r"The API key for billing is: (\S+)\. ", response.content.decode())
    assert post({"everyone": True, "event": "x"}, key).status_code == 202
    secret = key.partition(".")[2]
    for model in apps.get_models():
        for row in model.objects.values_list():
            assert secret not in repr(row), model
    listed = admin_client.get("/admin/rooms/servicekey/").content.decode()
    assert "billing" in listed and secret not in listed and "/admin/announce/" in listed
    assert "Send to everyone online" in admin_client.get("/admin/announce/").content.decode()


def test_the_schema_documents_the_publish_api(client):
    schema = client.get("/api/schema/?format=json").json()
    assert "post" in schema["paths"][URL]
    assert schema["components"]["securitySchemes"]["ServiceKey"]["in"] == "header"


@pytest.mark.django_db(transaction=True)
async def test_the_admin_announcement_reaches_connected_clients(connect, alice, make_user):
    staff = await sync_to_async(make_user)("agent", is_staff=True, first_name="Ann", last_name="Lee")
    socket = await connect(user=alice)

    def send(user, text):
        client = DjangoClient()
        client.force_login(user)
        return client.post("/admin/announce/", {"text": text})

    refused = await sync_to_async(send)(alice, "not staff")
    assert refused.status_code == 302 and "/admin/login/" in refused["Location"]
    await socket.assert_nothing(0.1)
    assert (await sync_to_async(send)(staff, "Back at 18:00")).status_code == 302
    event = (await socket.receive_type("server.message"))["data"]
    assert event == {
        "event": "announcement",
        "data": {"text": "Back at 18:00", "from": {"id": staff.pk, "name": "Ann Lee", "is_staff": True}},
        "to": "everyone",
    }
