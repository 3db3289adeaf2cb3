"""The HTTP side a new user meets first: the home page and the JWT endpoints."""

import pytest
from rest_framework_simplejwt.tokens import AccessToken

pytestmark = pytest.mark.django_db


def test_home_page_says_where_to_connect(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "ws://testserver/ws/" in response.content.decode()


def test_token_obtain_and_refresh(client, alice):
    refused = client.post("/api/auth/token/", {"username": "alice", "password": "wrong"}, content_type="application/json")
    assert refused.status_code == 401
    pair = client.post("/api/auth/token/", {"username": "alice", "password": "alice-pass"}, content_type="application/json").json()
    assert AccessToken(pair["access"])["user_id"] == str(alice.pk)
    refreshed = client.post("/api/auth/token/refresh/", {"refresh": pair["refresh"]}, content_type="application/json")
    assert refreshed.status_code == 200
    assert AccessToken(refreshed.json()["access"])["user_id"] == str(alice.pk)
