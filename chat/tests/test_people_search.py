"""People search (GET /api/users/?search=): who a person may find, by name, for the chat page's pickers."""

import pytest
from django.core.cache import cache
from django.test import Client as DjangoClient
from rest_framework_simplejwt.tokens import AccessToken

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_throttle():
    """Throttle counts live in the default cache; each test starts from none."""
    cache.clear()
    yield
    cache.clear()


def search(user, text: str, *, jwt: bool = False):
    if jwt:
        client = DjangoClient(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    else:
        client = DjangoClient()
        client.force_login(user)
    return client.get("/api/users/", {"search": text})


def test_finds_active_people_by_any_part_of_their_name_but_not_oneself(alice, make_user):
    ann = make_user("agent7", first_name="Ann", last_name="Lee", is_staff=True)
    annie = make_user("annie")
    make_user("anna", is_active=False)
    make_user("bob", first_name="Bob", last_name="Stone", email="ann@example.com")  # e-mail is not searched

    found = search(alice, "an").json()["users"]
    assert found == [
        {"id": ann.pk, "name": "Ann Lee", "is_staff": True, "username": "agent7"},
        {"id": annie.pk, "name": "annie", "is_staff": False, "username": "annie"},
    ]
    assert [p["id"] for p in search(alice, "ann lee").json()["users"]] == [ann.pk]  # every word matches
    assert [p["id"] for p in search(alice, "LEE").json()["users"]] == [ann.pk]
    assert search(alice, "ali").json()["users"] == []  # never oneself
    # The same people for a JWT client.
    assert search(alice, "an", jwt=True).json()["users"] == found


def test_at_most_twenty_and_at_least_two_characters(alice, make_user):
    for n in range(25):
        make_user(f"user{n:02}")
    assert len(search(alice, "user").json()["users"]) == 20
    short = search(alice, " u ")
    assert short.status_code == 400 and short.json()["error"]["code"] == "invalid"
    assert search(alice, "").status_code == 400
    assert DjangoClient().get("/api/users/", {"search": "user"}).status_code in (401, 403)


def test_searches_are_throttled_per_user(alice, bob, settings):
    settings.CHAT_PEOPLE_SEARCH_RATE = "3/min"
    answers = [search(alice, "bo") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1].json()["error"]
    assert refused["code"] == "rate_limited" and refused["details"]["retry_after_ms"] > 0
    assert search(bob, "al").status_code == 200  # another person is not slowed


def test_in_the_openapi_schema(alice):
    client = DjangoClient()
    client.force_login(alice)
    schema = client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/users/"]["get"]
    assert operation["operationId"] == "users_search"
    assert any(p["name"] == "search" and p["in"] == "query" for p in operation["parameters"])
