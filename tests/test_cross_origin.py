"""
Front ends served from another origin (seed 004's Vue front end had its own): REST answers CORS
for ``CORS_ALLOWED_ORIGINS`` on /api/ only, without credentials; every WebSocket endpoint, native
and compatibility, lets ``REALTIME["ALLOWED_ORIGINS"]`` through its Origin check beside the
ALLOWED_HOSTS sites, refuses other origins with HTTP 403, and still lets a handshake without
Origin (a non-browser client) through.
"""

import pytest

APP = "https://app.example.com"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def channel_layer(settings):
    """The Origin check runs before anything touches the layer: the in-memory one is enough."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REALTIME = {**settings.REALTIME, "REDIS_URL": ""}
    return "memory"


@pytest.fixture(autouse=True)
def app_origin_listed(settings):
    settings.CORS_ALLOWED_ORIGINS = [APP]
    settings.REALTIME = {**settings.REALTIME, "ALLOWED_ORIGINS": [APP]}


def test_a_listed_origin_obtains_a_token_over_cors(client, alice):
    preflight = client.options(
        "/api/auth/token/",
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == APP
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    response = client.post(
        "/api/auth/token/",
        {"username": "alice", "password": "alice-pass"},
        content_type="application/json",
        headers={"Origin": APP},
    )
    assert response.status_code == 200 and "access" in response.json()
    assert response.headers["Access-Control-Allow-Origin"] == APP
    # Token auth needs no cookie: the browser is never told it may send or read credentials.
    assert "Access-Control-Allow-Credentials" not in response.headers
    authorized = client.options(
        "/api/chat/conversations/",
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert "authorization" in authorized.headers["Access-Control-Allow-Headers"]


def test_an_unlisted_origin_and_pages_outside_the_api_get_no_cors_headers(client, alice):
    foreign = client.post(
        "/api/auth/token/",
        {"username": "alice", "password": "alice-pass"},
        content_type="application/json",
        headers={"Origin": "https://evil.example"},
    )
    assert "Access-Control-Allow-Origin" not in foreign.headers  # the browser hides the answer
    page = client.get("/health", headers={"Origin": APP})
    assert "Access-Control-Allow-Origin" not in page.headers


@pytest.mark.parametrize("path", ["/ws/", "/ws", "/compat/000/ws", "/compat/001/ws", "/compat/002/ws"])
async def test_every_websocket_endpoint_lets_a_listed_origin_in(connect, alice, path):
    client = await connect(user=alice, path=path, headers=[(b"origin", APP.encode())], expect_welcome=False)
    assert client.connected


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://app.example.com",  # another scheme is another origin
        "https://app.example.com:8443",  # and so is another port
        "https://sub.app.example.com",
        "null",
    ],
)
@pytest.mark.parametrize("path", ["/ws/", "/ws"])
async def test_other_origins_are_refused_at_the_handshake(connect, alice, path, origin):
    client = await connect(user=alice, path=path, headers=[(b"origin", origin.encode())], expect_welcome=False)
    assert client.connected is False


async def test_same_site_and_originless_handshakes_pass_as_before(connect, alice):
    same_site = await connect(user=alice, headers=[(b"origin", b"http://localhost:8000")])
    assert same_site.welcome["type"] == "welcome"
    without_origin = await connect(user=alice)
    assert without_origin.welcome["type"] == "welcome"
