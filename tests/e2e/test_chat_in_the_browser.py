"""
The chat page in a real browser: Playwright (Python) driving Debian's Chromium (/usr/bin/chromium;
Playwright's own browser download does not work here). Two browser contexts are two users; the
server is restarted mid-chat and both pages come back with every message exactly once; a lost
event is recovered from the seq gap it leaves, or on the server's ``resync``, without reconnecting.
"""

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from unittest.mock import patch

import pytest
from django.db import connections
from playwright.sync_api import Page, expect, sync_playwright

from chat import services
from chat.models import Message
from chat.tests.conftest import png_bytes
from realtime.delivery import resync
from realtime.groups import user_group
from realtime.publish import publish
from tests.servers import Daphne, database_url

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000
# Assertions wait as long as actions do: a server restart on a loaded 2-core machine takes seconds.
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    if not chromium:
        raise RuntimeError("Browser tests need Debian's chromium: run them with `make test`.")
    # Playwright's sync API runs an event loop in this thread, so Django would refuse the tests'
    # ORM calls as "async context"; they are plain sync calls (Django's docs name this case).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def server(django_db_setup, tmp_path):
    """A Daphne of its own (this test restarts it) on the test database and Redis."""
    from django.db import connection

    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        raise RuntimeError("Browser tests need Redis: set REDIS_URL or run them with `make test`.")
    daphne = Daphne(
        {
            "DATABASE_URL": database_url(connection.settings_dict),
            "REDIS_URL": redis_url,
            "REALTIME_OVERRIDES": json.dumps(
                {"CONNECTIONS_PER_IP_PER_MIN": 10_000, "CONNECTIONS_PER_IP_PER_S": 10_000}
            ),
            "MEDIA_ROOT": str(tmp_path / "media"),
        }
    )
    yield daphne
    daphne.stop()


def open_chat(browser, server, username: str, conversation_id: int, page: Page | None = None) -> Page:
    """Log in through the form and open the conversation, on ``page`` or in a new browser context (its own cookies)."""
    page = page or browser.new_context().new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{server.http}/chat/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"{username}-pass")
    page.click("main form button[type=submit]")
    expect(page.locator("#status")).to_have_text("live")
    page.click(f"#conversations li[data-id='{conversation_id}']")
    expect(page.locator("#thread")).to_be_visible()
    return page


def in_thread(fn, **kwargs):
    """Run a service in a thread of its own: its publish uses async_to_sync, which refuses to run
    on the thread where Playwright's event loop lives."""
    with ThreadPoolExecutor(1) as pool:
        try:
            return pool.submit(fn, **kwargs).result()
        finally:
            pool.submit(connections.close_all).result()


def stored_unpublished(fn, **kwargs):
    """Run a service (``in_thread``) with every publish failing, so its events are lost; then forget
    the loss, so this process announces no ``resync``: the test decides what the page is told."""
    with patch("realtime.delivery.outbox.send_to_layer", side_effect=ConnectionError("test: the event is lost")):
        result = in_thread(fn, **kwargs)
    resync.take_lost_message()
    return result


class Frames:
    """The WebSocket frames a page sends and receives, in order, as ``("sent" | "received", frame)``."""

    def __init__(self, page: Page):
        self.sockets = 0
        self.log: list[tuple[str, dict]] = []
        page.on("websocket", self._opened)

    def _opened(self, ws) -> None:
        self.sockets += 1
        ws.on("framesent", lambda payload: self.log.append(("sent", json.loads(payload))))
        ws.on("framereceived", lambda payload: self.log.append(("received", json.loads(payload))))

    def after(self, direction: str, frame_type: str, **data) -> list[tuple[str, dict]]:
        """The frames after the first one going ``direction`` of ``frame_type`` whose data has ``data``."""
        for index, (way, frame) in enumerate(self.log):
            if way == direction and frame["type"] == frame_type and data.items() <= (frame.get("data") or {}).items():
                return self.log[index + 1 :]
        raise AssertionError(f"no {direction} {frame_type} {data} in {self.log}")


def shown(page: Page) -> list[str]:
    """The stored messages the page shows, in order (pending ones excluded)."""
    return page.eval_on_selector_all("#messages li[data-seq] .content", "els => els.map(e => e.textContent)")


def send(page: Page, text: str) -> None:
    page.fill("#composer textarea", text)
    page.click("#composer button[type=submit]")


def test_two_users_chat_and_survive_a_server_restart(browser, server, alice, bob):
    group = in_thread(services.create_group, owner=alice, title="Browser chat", member_ids=[bob.pk])
    alice_page = open_chat(browser, server, "alice", group.pk)
    bob_page = open_chat(browser, server, "bob", group.pk)

    send(alice_page, "hello bob")
    expect(bob_page.locator("#messages li[data-seq] .content")).to_have_text(["hello bob"])
    # Bob reads it (his page is open), so alice sees the receipt; bob typing shows on alice's page.
    expect(alice_page.locator(".receipt")).to_have_text("Seen by bob")
    bob_page.locator("#composer textarea").press_sequentially("typing")
    expect(alice_page.locator("#typing")).to_have_text("bob typing…")
    bob_page.fill("#composer textarea", "")

    # Content is text, never HTML.
    send(bob_page, '<img src=x onerror="window.pwned=1"><b>bold?</b>')
    expect(alice_page.locator("#messages li[data-seq]")).to_have_count(2)
    assert alice_page.evaluate("window.pwned") is None
    assert alice_page.locator("#messages img").count() == 0

    # The server goes away mid-chat: SIGTERM (clients get 1001), then down for a while.
    server.stop()
    expect(alice_page.locator("#status")).not_to_have_text("live")
    for n in range(3):  # sent meanwhile by bob through another path (REST, another process...)
        in_thread(services.send_message, sender=bob, conversation=group, content=f"while you were away {n}")
    send(alice_page, "queued while offline")  # held in the client's offline queue
    expect(alice_page.locator("#messages li[data-pending]")).to_have_count(1)
    server.start_again()

    expected = [
        "hello bob",
        '<img src=x onerror="window.pwned=1"><b>bold?</b>',
        *[f"while you were away {n}" for n in range(3)],
        "queued while offline",
    ]
    for page in (alice_page, bob_page):
        expect(page.locator("#status")).to_have_text("live")
        expect(page.locator("#messages li[data-seq] .content")).to_have_text(expected)
    expect(alice_page.locator("#messages li[data-pending]")).to_have_count(0)
    assert shown(alice_page) == expected and shown(bob_page) == expected  # once each, in seq order
    assert Message.objects.filter(conversation=group, content="queued while offline").count() == 1

    # An image goes up over REST and is shown to the other member through its access-checked URL.
    alice_page.set_input_files(
        "#composer input[type=file]", files=[{"name": "dot.png", "mimeType": "image/png", "buffer": png_bytes((4, 4))}]
    )
    alice_page.click("#composer button[type=submit]")
    image = bob_page.locator("#messages li[data-seq] img[alt='dot.png']")
    expect(image).to_be_visible()
    assert bob_page.eval_on_selector("#messages img[alt='dot.png']", "img => img.naturalWidth") == 4


def test_unread_badges_and_presence_dots(browser, server, alice, bob, carol):
    group = in_thread(services.create_group, owner=alice, title="Badges", member_ids=[bob.pk])
    other = in_thread(services.create_group, owner=carol, title="Elsewhere", member_ids=[alice.pk])
    alice_page = open_chat(browser, server, "alice", group.pk)
    in_thread(services.send_message, sender=carol, conversation=other, content="ping 1")
    in_thread(services.send_message, sender=carol, conversation=other, content="ping 2")
    badge = alice_page.locator(f"#conversations li[data-id='{other.pk}'] .unread")
    expect(badge).to_have_text("2")
    dot = alice_page.locator(f"#conversations li[data-id='{group.pk}'] .presence")
    expect(dot).to_have_attribute("data-online", "false")
    bob_page = open_chat(browser, server, "bob", group.pk)
    expect(dot).to_have_attribute("data-online", "true")
    bob_page.context.close()
    expect(dot).to_have_attribute("data-online", "false")
    alice_page.click(f"#conversations li[data-id='{other.pk}']")
    expect(badge).to_have_text("")


def test_support_desk_in_the_admin_updates_live(browser, server, alice, make_user):
    make_user("agent", is_staff=True, first_name="Ann", last_name="Lee")
    conversation, _ = in_thread(services.open_support, user=alice)
    in_thread(services.send_message, sender=alice, conversation=conversation, content="my order is late")
    desk = browser.new_context().new_page()
    desk.set_default_timeout(TIMEOUT_MS)
    desk.goto(f"{server.http}/admin/login/?next=/admin/chat/supportconversation/")
    desk.fill("input[name=username]", "agent")
    desk.fill("input[name=password]", "agent-pass")
    desk.click("input[type=submit]")
    unread = desk.locator(f".desk-unread[data-conversation='{conversation.pk}']")
    expect(desk.locator("#desk-status")).to_have_text("Live: counts update as messages arrive.")
    expect(unread).to_have_text("1")
    in_thread(services.send_message, sender=alice, conversation=conversation, content="<b>hello?</b>")
    expect(unread).to_have_text("2")  # the list follows without a reload

    desk.click(f"[data-desk-conversation='{conversation.pk}']")
    expect(desk.locator("#desk-status")).to_have_text("live")
    in_thread(services.send_message, sender=alice, conversation=conversation, content="still there?")
    expect(desk.locator("#desk-thread .content")).to_have_text(["my order is late", "<b>hello?</b>", "still there?"])
    assert desk.locator("#desk-thread b").count() == 0  # content is text, never HTML

    # The reply box: the user's open chat page receives the staff reply.
    user_page = open_chat(browser, server, "alice", conversation.pk)
    desk.fill("#desk-reply textarea", "On its way!")
    desk.click("#desk-reply input[name=reply]")
    expect(user_page.locator("#messages li[data-seq] .content").last).to_have_text("On its way!")
    # Both sides name the sender; the agent is not a member, the message names them (issue 20).
    expect(user_page.locator("#messages li[data-seq] .who").last).to_have_text("Ann Lee (support)")
    expect(desk.locator("#desk-thread .who")).to_have_text(["alice", "alice", "alice", "Ann Lee (support)"])


def test_history_scrolls_back_page_by_page(browser, server, alice, bob):
    group = in_thread(services.create_group, owner=alice, title="Long history", member_ids=[bob.pk])
    for n in range(1, 61):
        in_thread(services.send_message, sender=bob, conversation=group, content=f"old {n}")
    page = open_chat(browser, server, "alice", group.pk)
    rows = page.locator("#messages li[data-seq] .content")
    expect(rows).to_have_count(50)  # the newest page
    expect(rows.first).to_have_text("old 11")
    page.click("#older")
    expect(rows).to_have_count(60)
    expect(rows.first).to_have_text("old 1")
    expect(page.locator("#older")).to_be_hidden()  # nothing older


def open_watched(browser, server, username: str, conversation: int) -> tuple[Page, Frames]:
    """``open_chat``, its frames recorded, once the open is complete: the conversation is marked read."""
    page = browser.new_context().new_page()
    frames = Frames(page)
    open_chat(browser, server, username, conversation, page=page)
    expect(page.locator(f"#conversations li[data-id='{conversation}'] .unread")).to_have_text("")
    return page, frames


def test_a_lost_event_is_fetched_from_the_seq_gap_and_shown_in_order(browser, daphnes, alice, bob):
    server = daphnes[0]  # the shared servers: this test restarts nothing
    group = in_thread(services.create_group, owner=alice, title="Gaps", member_ids=[bob.pk])
    in_thread(services.send_message, sender=bob, conversation=group, content="first")
    page, frames = open_watched(browser, server, "alice", group.pk)
    rows = page.locator("#messages li[data-seq] .content")
    expect(rows).to_have_text(["first"])

    stored_unpublished(services.send_message, sender=bob, conversation=group, content="lost on the way")
    in_thread(services.send_message, sender=bob, conversation=group, content="after the loss")  # seq 3: skips 2

    expected = ["first", "lost on the way", "after the loss"]
    expect(rows).to_have_text(expected)  # each once, in seq order
    # Fetched with chat.join from the last seq without a gap, on the same socket.
    fetch = [
        f for way, f in frames.after("received", "chat.message", seq=3) if way == "sent" and f["type"] == "chat.join"
    ]
    assert [f["data"] for f in fetch][:1] == [{"conversation_id": group.pk, "after_seq": 1}]
    assert frames.sockets == 1
    assert shown(page) == expected
    page.context.close()  # its socket would stay on the shared server


def test_resync_catches_up_the_open_thread_and_the_list_without_reconnecting(browser, daphnes, alice, bob):
    server = daphnes[0]  # the shared servers: this test restarts nothing
    group = in_thread(services.create_group, owner=alice, title="Resync", member_ids=[bob.pk])
    other = in_thread(services.create_group, owner=bob, title="Elsewhere", member_ids=[alice.pk])
    in_thread(services.send_message, sender=bob, conversation=group, content="first")
    page, frames = open_watched(browser, server, "alice", group.pk)
    rows = page.locator("#messages li[data-seq] .content")
    expect(rows).to_have_text(["first"])

    stored_unpublished(services.send_message, sender=bob, conversation=group, content="missed here")
    stored_unpublished(services.send_message, sender=bob, conversation=other, content="missed there")
    in_thread(publish, group=user_group(alice.pk), event_type="resync", data={"reason": "publish_failed"})

    expect(rows).to_have_text(["first", "missed here"])
    expect(page.locator(f"#conversations li[data-id='{other.pk}'] .unread")).to_have_text("1")
    sent = [f["type"] for way, f in frames.after("received", "resync") if way == "sent"]
    assert "chat.join" in sent and "chat.conversations" in sent
    assert frames.sockets == 1  # caught up on the open socket
    assert shown(page) == ["first", "missed here"]
    page.context.close()  # its socket would stay on the shared server
