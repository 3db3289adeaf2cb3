"""
A front end served from another origin (seed 004's Vue front end had its own), in Debian's
Chromium through Playwright: a page of ``http://app.test:<port>`` (a static file server of its
own; Chromium maps the names to 127.0.0.1) loads ``client.js`` from Switchboard, obtains a token
over REST through CORS, connects in token mode, receives a message and renews its short-lived
token on the open socket (``auth.refresh``). A page of an unlisted origin reads no REST answer
and gets no WebSocket.
"""

import functools
import os
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import sync_playwright

from chat import services
from tests.e2e.browser import CHROMIUM_ARGS, TIMEOUT_MS, in_thread
from tests.servers import Daphne, database_url

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# Short-lived access tokens, so that the page renews one while the test watches (at half its life).
ACCESS_TOKEN_LIFETIME_S = 4

PAGE = """<!doctype html>
<html><head><title>front end on another origin</title>
<script src="{api}/static/realtime/client.js"></script></head>
<body><p>a front end served by a host of its own</p></body></html>
"""


@pytest.fixture
def front_end(tmp_path):
    """A static file server on a free port of 127.0.0.1, serving ``index.html`` (written by the test)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path)))
    server.RequestHandlerClass.log_message = lambda *args: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], tmp_path
    server.shutdown()
    server.server_close()


@pytest.fixture
def switchboard(django_db_setup, front_end, tmp_path):
    from django.db import connection

    port, _ = front_end
    listed = f"http://app.test:{port}"
    daphne = Daphne(
        {
            "DATABASE_URL": database_url(connection.settings_dict),
            "REDIS_URL": os.environ["REDIS_URL"],
            "CORS_ALLOWED_ORIGINS": listed,
            "WEBSOCKET_ALLOWED_ORIGINS": listed,
            "JWT_ACCESS_TOKEN_LIFETIME_S": str(ACCESS_TOKEN_LIFETIME_S),
            "MEDIA_ROOT": str(tmp_path / "media"),
        }
    )
    yield daphne
    daphne.stop()


@pytest.fixture
def browser():
    chromium = shutil.which("chromium")
    if not chromium:
        raise RuntimeError("Browser tests need Debian's chromium: run them with `make test`.")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's loop runs in this thread
    rules = "--host-resolver-rules=MAP app.test 127.0.0.1, MAP evil.test 127.0.0.1"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=[*CHROMIUM_ARGS, rules])
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


CONNECT = """async ([url, api]) => {
    window.seen = [];
    window.renewals = 0;
    const client = new RealtimeClient({url, tokens: RealtimeClient.passwordTokens(api, "alice", "alice-pass")});
    client.on("chat.message", (data) => window.seen.push(data.content));
    client.on("token", () => { window.renewals += 1; });
    const welcome = new Promise((resolve) => client.on("welcome", resolve));
    client.start();
    return (await welcome).user.username;
}"""

UNLISTED = """async ([url, api]) => {
    let rest;
    try {
        await fetch(`${api}/api/auth/token/`, {method: "POST", headers: {"Content-Type": "application/json"},
                                              body: JSON.stringify({username: "alice", password: "alice-pass"})});
        rest = "read";
    } catch (error) {
        rest = "blocked";  // no Access-Control-Allow-Origin: the browser withholds the answer
    }
    const socket = await new Promise((resolve) => {
        const ws = new WebSocket(url);
        ws.onopen = () => resolve("open");
        ws.onclose = (event) => resolve(`closed ${event.code}`);
    });
    return [rest, socket];
}"""


def test_a_page_of_a_listed_origin_chats_with_a_token_and_an_unlisted_one_gets_nothing(
    browser, front_end, switchboard, alice, bob, conversation
):
    port, root = front_end
    (root / "index.html").write_text(PAGE.format(api=switchboard.http))
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"http://app.test:{port}/index.html")
    assert page.evaluate("location.origin") == f"http://app.test:{port}"
    assert page.evaluate(CONNECT, [switchboard.url, switchboard.http]) == "alice"
    assert not context.cookies(switchboard.http)  # token mode: no Switchboard cookie at all

    in_thread(services.send_as, user=bob, conversation_id=conversation.pk, content="to another origin")
    page.wait_for_function("window.seen.includes('to another origin')")
    # Renewed on the open socket before it expired (at half its life): still the same connection.
    page.wait_for_function("window.renewals >= 1", timeout=ACCESS_TOKEN_LIFETIME_S * 1000 + TIMEOUT_MS)
    in_thread(services.send_as, user=bob, conversation_id=conversation.pk, content="after the renewal")
    page.wait_for_function("window.seen.includes('after the renewal')")

    stranger = context.new_page()
    stranger.set_default_timeout(TIMEOUT_MS)
    stranger.goto(f"http://evil.test:{port}/index.html")
    assert stranger.evaluate(UNLISTED, [switchboard.url, switchboard.http]) == ["blocked", "closed 1006"]
    context.close()
