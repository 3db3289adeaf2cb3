"""The HTTP side a new user meets first: the home page, the API docs and the JWT endpoints."""

import re
from urllib.parse import urlsplit

import pytest
from rest_framework_simplejwt.tokens import AccessToken

pytestmark = pytest.mark.django_db

# What a page loads: <script src>, <link href> (stylesheets, icons, preconnects) and <img src>.
LOADED_URL = re.compile(r"<(?:script|img)\b[^>]*\bsrc=\"([^\"]*)\"|<link\b[^>]*\bhref=\"([^\"]*)\"")


def loaded_urls(html: str) -> list[str]:
    """The URLs ``html`` makes a browser fetch by itself (scripts, stylesheets, icons, images)."""
    return [src or href for src, href in LOADED_URL.findall(html)]


def fetch(client, url: str):
    """GET ``url`` and return the response, its body read (WhiteNoise answers with a file stream)."""
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def test_home_page_says_where_to_connect(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "ws://testserver/ws/" in response.content.decode()


def test_token_obtain_and_refresh(client, alice):
    refused = client.post(
        "/api/auth/token/", {"username": "alice", "password": "wrong"}, content_type="application/json"
    )
    assert refused.status_code == 401
    pair = client.post(
        "/api/auth/token/", {"username": "alice", "password": "alice-pass"}, content_type="application/json"
    ).json()
    assert AccessToken(pair["access"])["user_id"] == str(alice.pk)
    refreshed = client.post("/api/auth/token/refresh/", {"refresh": pair["refresh"]}, content_type="application/json")
    assert refreshed.status_code == 200
    assert AccessToken(refreshed.json()["access"])["user_id"] == str(alice.pk)


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_api_docs_load_only_our_own_static_files(client, path):
    """Swagger UI and ReDoc come from drf-spectacular-sidecar through WhiteNoise, not a CDN: they work offline."""
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    urls = loaded_urls(html)
    assert any(url.endswith(".js") for url in urls), html
    for url in urls:
        assert not urlsplit(url).netloc and not url.startswith("//"), f"{path} loads {url} from another origin"
        assert url.startswith("/static/"), url
        served, body = fetch(client, url)
        assert served.status_code == 200 and body, url
    assert "cdn." not in html and "fonts.googleapis" not in html


def test_api_docs_page_points_at_the_schema(client):
    html = client.get("/api/docs/").content.decode()
    assert "/api/schema/" in html
    assert client.get("/api/schema/").status_code == 200


def test_pages_have_a_favicon_that_is_served(client):
    """The icon a page names answers 200, and so does /favicon.ico, asked for by pages that name none."""
    html = client.get("/").content.decode()
    icons = re.findall(r'<link rel="icon" href="([^"]+)"', html)
    assert icons
    for icon in icons:
        response, body = fetch(client, icon)
        assert response.status_code == 200 and body, icon
    redirect = client.get("/favicon.ico")
    assert redirect.status_code == 302
    response, body = fetch(client, redirect["Location"])
    assert response.status_code == 200
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO file
