"""
The chat page in a real browser: Playwright (Python) driving Debian's Chromium (/usr/bin/chromium;
Playwright's own browser download does not work here). Two browser contexts are two users; the
server is restarted mid-chat and both pages come back with every message exactly once; a lost
event is recovered from the seq gap it leaves, or on the server's ``resync``, without reconnecting.

The page as a person uses it (issue 24), at 1280x800 and 390x844: every control they need is
clickable without ``force`` and nothing overlaps, a screenshot of each state is saved under
``test-output/screenshots/`` for review, and axe-core (tests/e2e/axe, installed by ``make test``)
finds no critical or serious violation, in light and dark mode. People are found by name, Enter
sends, drafts survive switching and reloading, a refused upload says why in words and the next
upload clears it. The members panel lists names, roles and presence; the owner adds and removes
people by name and makes members admins, live on the others' pages; "Seen by" survives a
reload. A long conversation scrolls back to its first message, every message once and in order,
through a window of rows (the document never holds them all); an older page refused as
rate-limited is asked again and arrives. One browser for the module; only the restart and
rate-limit tests start servers of their own.
"""

import json
import os
import re
import time
from unittest.mock import patch

import pytest
from playwright.sync_api import Page, expect

from chat import services
from chat.models import Membership, Message
from chat.tests.conftest import png_bytes
from realtime.delivery import resync
from realtime.groups import user_group
from realtime.publish import publish
from tests.e2e.browser import DESKTOP, PHONE, TIMEOUT_MS, audit, clickable, in_thread, no_overlap, screenshot
from tests.servers import Daphne, database_url

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# Assertions wait as long as actions do: a server restart on a loaded 2-core machine takes seconds.
expect.set_options(timeout=TIMEOUT_MS)


def own_daphne(tmp_path, **realtime) -> Daphne:
    """A Daphne of its own on the test database and Redis, with ``realtime`` over its REALTIME settings."""
    from django.db import connection

    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        raise RuntimeError("Browser tests need Redis: set REDIS_URL or run them with `make test`.")
    return Daphne(
        {
            "DATABASE_URL": database_url(connection.settings_dict),
            "REDIS_URL": redis_url,
            "REALTIME_OVERRIDES": json.dumps(
                {"CONNECTIONS_PER_IP_PER_MIN": 10_000, "CONNECTIONS_PER_IP_PER_S": 10_000, **realtime}
            ),
            "MEDIA_ROOT": str(tmp_path / "media"),
        }
    )


@pytest.fixture
def server(django_db_setup, tmp_path):
    """A Daphne of its own (this test restarts it) on the test database and Redis."""
    daphne = own_daphne(tmp_path)
    yield daphne
    daphne.stop()


def log_in(browser, server, username: str, page: Page | None = None, **context_options) -> Page:
    """Log in through the form to the chat page, live, on ``page`` or in a new browser context
    (its own cookies; ``context_options`` such as ``viewport`` or ``color_scheme``)."""
    page = page or browser.new_context(**context_options).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{server.http}/chat/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"{username}-pass")
    page.click("main form button[type=submit]")
    expect(page.locator("#status")).to_have_text("live")
    return page


def open_chat(browser, server, username: str, conversation_id: int, page: Page | None = None, **options) -> Page:
    """``log_in``, then open the conversation from the list."""
    page = log_in(browser, server, username, page, **options)
    page.click(f"#conversations li[data-id='{conversation_id}']")
    expect(page.locator("#thread")).to_be_visible()
    return page


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
    """Type ``text`` into the composer and press Enter, as a person sends."""
    page.fill("#composer textarea", text)
    page.press("#composer textarea", "Enter")


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
    # Visible as soon as its element is there; decoded (its real 4 px width) once the download is done.
    bob_page.wait_for_function("() => document.querySelector(\"#messages img[alt='dot.png']\").naturalWidth === 4")


def test_unread_badges_and_presence_dots(browser, daphnes, alice, bob, carol):
    server = daphnes[0]  # the shared servers: this test restarts nothing
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


def test_support_desk_in_the_admin_updates_live(browser, daphnes, alice, make_user):
    server = daphnes[0]  # the shared servers: this test restarts nothing
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


def test_history_loads_as_the_reader_scrolls_up(browser, daphnes, alice, bob):
    server = daphnes[0]  # the shared servers: this test restarts nothing
    group = in_thread(services.create_group, owner=alice, title="Long history", member_ids=[bob.pk])
    for n in range(1, 61):
        in_thread(services.send_message, sender=bob, conversation=group, content=f"old {n}")
    page = open_chat(browser, server, "alice", group.pk)
    rows = page.locator("#messages li[data-seq] .content")
    expect(rows.last).to_have_text("old 60")  # the newest page, at its newest message
    page.locator("#scroller").evaluate("scroller => { scroller.scrollTop = 0; }")  # the reader scrolls up
    expect(rows.first).to_have_text("old 1")  # the next page, above the reader's place
    expect(page.locator("#older")).to_be_hidden()  # nothing older


def send_numbered(*, sender, conversation, count: int) -> None:
    """``count`` messages "message 1" ... "message <count>" through the service, one after another."""
    for n in range(1, count + 1):
        services.send_message(sender=sender, conversation=conversation, content=f"message {n}")


def rows_shown(page: Page) -> list[tuple[int, str]]:
    """The stored messages in the document now, in document order, as (seq, text)."""
    return [
        (int(seq), text)
        for seq, text in page.eval_on_selector_all(
            "#messages li[data-seq]", "els => els.map(e => [e.dataset.seq, e.querySelector('.content').textContent])"
        )
    ]


def test_a_long_history_scrolls_back_to_its_first_message_through_a_window_of_rows(browser, daphnes, alice, bob):
    """
    Scrolling up half a screen at a time loads older pages until the first message is in view;
    every message passes by, and at every step the rows are in order, each once, without a gap,
    and the document holds only a window of them; a message arriving meanwhile is still read out.
    """
    server = daphnes[0]  # the shared servers: this test restarts nothing
    count = 320
    group = in_thread(services.create_group, owner=alice, title="Long history", member_ids=[bob.pk])
    in_thread(send_numbered, sender=bob, conversation=group, count=count)
    page = open_chat(browser, server, "alice", group.pk)
    expect(page.locator(f"#messages li[data-seq='{count}']")).to_be_in_viewport()

    seen, most_in_document = set(), 0
    deadline = time.monotonic() + 120  # ~50 steps and 6 pages; generous for a loaded machine
    while True:
        rows = rows_shown(page)
        seqs = [seq for seq, _ in rows]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"out of order, twice or a gap: {seqs}"
        assert all(text == f"message {seq}" for seq, text in rows)
        seen.update(seqs)
        most_in_document = max(most_in_document, len(rows))
        at_top = page.locator("#scroller").evaluate("scroller => scroller.scrollTop === 0")
        if seqs[0] == 1 and at_top and page.locator("#older").is_hidden():
            break
        assert time.monotonic() < deadline, f"still scrolling back at {seqs[0]}"
        # The reader scrolls up by half a screen; the snapshot is taken once a frame has been drawn.
        page.locator("#scroller").evaluate(
            """scroller => new Promise((resolve) => {
                scroller.scrollTop = Math.max(0, scroller.scrollTop - scroller.clientHeight / 2);
                requestAnimationFrame(() => requestAnimationFrame(resolve));
            })"""
        )
    expect(page.locator("#messages li[data-seq='1']")).to_be_in_viewport()
    assert seen == set(range(1, count + 1))
    assert most_in_document < count / 2, f"{most_in_document} of {count} rows in the document"

    # Far from the newest, a new message is not drawn but is still read out, and the reader stays.
    in_thread(services.send_message, sender=bob, conversation=group, content="a new one")
    expect(page.locator("#announcer")).to_have_text("bob: a new one")
    expect(page.locator("#messages li[data-seq='1']")).to_be_in_viewport()
    page.context.close()  # its socket would stay on the shared server


def test_an_older_page_refused_as_rate_limited_is_asked_again_and_arrives(browser, alice, bob, tmp_path):
    """
    ``chat.history`` limited to one frame every 6 s: the first older page, asked right after the
    newest, is refused with rate_limited; the page asks again after the wait, the history
    arrives, and no error is shown.
    """
    server = own_daphne(tmp_path, TYPE_RATE_LIMITS={"chat.history": {"per_min": 10, "burst": 1}})
    try:
        group = in_thread(services.create_group, owner=alice, title="Busy history", member_ids=[bob.pk])
        in_thread(send_numbered, sender=bob, conversation=group, count=70)
        page = browser.new_context().new_page()
        frames = Frames(page)
        open_chat(browser, server, "alice", group.pk, page=page)
        rows = page.locator("#messages li[data-seq] .content")
        expect(page.locator("#messages li[data-seq='70']")).to_be_in_viewport()
        page.locator("#scroller").evaluate("scroller => { scroller.scrollTop = 0; }")  # at once: refused

        expect(rows.first).to_have_text("message 1")  # above the reader's place, kept
        page.locator("#scroller").evaluate("scroller => { scroller.scrollTop = 0; }")
        expect(page.locator("#messages li[data-seq='1']")).to_be_in_viewport()
        received = [frame for way, frame in frames.log if way == "received" and frame["type"] == "error"]
        assert received and {frame["error"]["code"] for frame in received} == {"rate_limited"}
        asked = [f["data"].get("before_seq") for way, f in frames.log if way == "sent" and f["type"] == "chat.history"]
        # The newest page, then the older one: refused, asked again (the same page) until it came.
        assert asked[0] is None and asked[1:] == [21] * (len(received) + 1), asked
        expect(page.locator("#thread-error")).to_have_text("")
        expect(page.locator("#older")).to_be_hidden()
    finally:
        server.stop()


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


# -- the page as a person uses it (issue 24) ---------------------------------------------------


THREAD_CONTROLS = ["#composer textarea", "#composer button[type=submit]", "#composer .attach"]
LIST_CONTROLS = ["#new-direct-open", "#new-group-open", "#support", "#filter"]
PICKER_CONTROLS = ["#people-search", "#first-message", "#picker-submit", "#picker-close"]
REGIONS = [".sidebar", ".thread-head", ".scroller", "#composer"]


@pytest.mark.parametrize(
    "viewport,size",
    [pytest.param(DESKTOP, "desktop", id="1280x800"), pytest.param(PHONE, "phone", id="390x844")],
)
def test_every_control_is_reachable_nothing_overlaps_and_axe_passes(browser, daphnes, make_user, viewport, size):
    server = daphnes[0]
    alice = make_user("alice", first_name="Alice", last_name="Moreau")
    bob = make_user("bob", first_name="Bob", last_name="Stone")
    make_user("agent", first_name="Ann", last_name="Lee", is_staff=True)
    group = in_thread(services.create_group, owner=alice, title="Launch plan", member_ids=[bob.pk])
    in_thread(services.send_message, sender=bob, conversation=group, content="The deck is ready for review.")
    in_thread(services.send_message, sender=bob, conversation=group, content="Slides 4-6 need numbers.")
    lunch, _ = in_thread(services.send_as, user=bob, recipient_id=alice.pk, content="Lunch at 12?")
    in_thread(services.send_message, sender=alice, conversation=group, content="On it " * 40)
    color = "dark" if size == "phone" else "light"  # each width once in each scheme would double the time
    page = log_in(browser, server, "alice", viewport=viewport, color_scheme=color)

    # The list: newest activity first, the direct chat titled with the other person's name.
    rows = page.locator("#conversations li .name")
    expect(rows).to_have_text(["Launch plan", "Bob Stone"])
    expect(page.locator(f"#conversations li[data-id='{lunch.conversation_id}'] .unread")).to_have_text("1")
    clickable(page, LIST_CONTROLS)
    screenshot(page, f"chat-{size}-list")
    audit(page, f"{size}: the list")

    # A conversation open: on a phone the thread replaces the list, with a way back.
    page.click(f"#conversations li[data-id='{group.pk}']")
    expect(page.locator("#messages li[data-seq] .content")).to_have_count(3)
    if size == "phone":
        expect(page.locator(".sidebar")).to_be_hidden()
        clickable(page, ["#back", *THREAD_CONTROLS])
    else:
        clickable(page, [*LIST_CONTROLS, *THREAD_CONTROLS, f"#conversations li[data-id='{lunch.conversation_id}']"])
    no_overlap(page, REGIONS)
    # Names and times; one sender's consecutive messages grouped under one name.
    expect(page.locator("#messages li[data-seq] .who")).to_have_text(["Bob Stone", "Bob Stone", "You"])
    expect(page.locator("#messages li.continued")).to_have_count(1)
    expect(page.locator("#messages li[data-seq] time").first).to_have_attribute("datetime", re.compile(r"^\d{4}-"))
    expect(page.locator("#messages li.day")).to_have_text(["Today"])
    screenshot(page, f"chat-{size}-thread")
    audit(page, f"{size}: a thread open")

    if size == "phone":
        page.click("#back")
        expect(page.locator("#thread")).to_be_hidden()
    # The picker beside an open thread (the forms used to spill under it) stays clickable.
    page.click("#new-direct-open")
    clickable(page, PICKER_CONTROLS)
    page.fill("#people-search", "ann")
    expect(page.locator("#people-results .person")).to_have_text(["Ann Lee@agent · support"])
    clickable(page, ["#people-results .person"])
    no_overlap(page, REGIONS)
    screenshot(page, f"chat-{size}-picker")
    audit(page, f"{size}: the people picker")


def test_people_are_found_by_name_for_a_direct_chat_and_a_group(browser, daphnes, make_user):
    server = daphnes[0]
    alice = make_user("alice", first_name="Alice", last_name="Moreau")
    make_user("bob", first_name="Bob", last_name="Stone")
    make_user("carol", first_name="Carol", last_name="Diaz")
    page = log_in(browser, server, "alice", viewport=DESKTOP)
    bob_page = log_in(browser, server, "bob", viewport=PHONE)

    page.click("#new-direct-open")
    page.locator("#people-search").press_sequentially("sto")
    page.click("#people-results .person:has-text('Bob Stone')")
    expect(page.locator("#chosen")).to_have_text("Bob Stone×")
    page.fill("#first-message", "Hi Bob, got a minute?")
    page.click("#picker-submit")
    expect(page.locator("#thread-title")).to_have_text("Bob Stone")
    expect(page.locator("#picker")).to_be_hidden()
    expect(bob_page.locator("#conversations li .name")).to_have_text(["Alice Moreau"])
    expect(bob_page.locator("#conversations li .preview")).to_have_text(["Hi Bob, got a minute?"])
    expect(bob_page.locator("#conversations li .unread")).to_have_text(["1"])

    # Picking the same person again opens the chat that exists.
    page.click("#new-direct-open")
    page.fill("#people-search", "bob")
    page.click("#people-results .person")
    expect(page.locator("#picker")).to_be_hidden()
    assert page.locator("#conversations li").count() == 1

    page.click("#new-group-open")
    page.fill("#group-title", "Design review")
    for name in ("bob", "diaz"):
        page.fill("#people-search", name)
        page.locator("#people-results .person").first.click()
    expect(page.locator("#chosen li")).to_have_count(2)
    page.click("#picker-submit")
    expect(page.locator("#thread-title")).to_have_text("Design review")
    expect(page.locator("#thread-meta")).to_contain_text("3 members")
    group_row = page.locator("#conversations li").first
    expect(group_row.locator(".name")).to_have_text("Design review")
    expect(group_row.locator(".marker")).to_have_text("Group")
    expect(bob_page.locator("#conversations li .name")).to_have_text(["Design review", "Alice Moreau"])
    assert Membership.objects.filter(user=alice).count() == 2


def test_composer_enter_drafts_counter_and_a_refused_upload(browser, daphnes, make_user, settings):
    server = daphnes[0]
    alice = make_user("alice")
    bob = make_user("bob")
    group = in_thread(services.create_group, owner=alice, title="Drafts", member_ids=[bob.pk])
    other = in_thread(services.create_group, owner=alice, title="Other", member_ids=[bob.pk])
    page = open_chat(browser, server, "alice", group.pk, viewport=DESKTOP)
    box = page.locator("#composer textarea")

    # Shift+Enter is a newline, Enter sends.
    box.press_sequentially("line one")
    box.press("Shift+Enter")
    box.press_sequentially("line two")
    box.press("Enter")
    expect(page.locator("#messages li[data-seq] .content")).to_have_text(["line one\nline two"])
    expect(page.locator("#messages li[data-seq] .state, #messages .receipt")).to_have_text(["Sent"])
    expect(box).to_have_value("")

    # A draft per conversation, kept across switching and a reload.
    box.press_sequentially("half a thought")
    page.click(f"#conversations li[data-id='{other.pk}']")
    expect(box).to_have_value("")
    page.click(f"#conversations li[data-id='{group.pk}']")
    expect(box).to_have_value("half a thought")
    page.reload()
    expect(page.locator("#status")).to_have_text("live")
    expect(page.locator("#thread-title")).to_have_text("Drafts")  # the open conversation too
    expect(box).to_have_value("half a thought")

    # The counter appears near the limit and warns past it.
    limit = 4000  # settings.CHAT_MAX_MESSAGE_CHARS of the servers (the default)
    expect(page.locator("#counter")).to_have_text("")
    box.fill("x" * (limit - 10))
    expect(page.locator("#counter")).to_have_text(f"{limit - 10:,} / {limit:,}")
    box.fill("x" * (limit + 1))
    expect(page.locator("#counter")).to_have_attribute("data-over", "true")
    box.press("Enter")
    expect(page.locator("#thread-error")).to_have_text(f"That message is too long: at most {limit:,} characters.")
    box.fill("")

    # A refused upload says why in words where the action was; the next upload clears it.
    page.set_input_files(
        "#composer input[type=file]",
        files=[{"name": "setup.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ"}],
    )
    page.press("#composer textarea", "Enter")
    expect(page.locator("#thread-error")).to_have_text(
        "That file type isn't allowed: use PDF, TXT, CSV, ZIP, DOCX, XLSX, PNG, JPG, GIF, WEBP."
    )
    screenshot(page, "chat-desktop-refused-upload")
    audit(page, "desktop: a refused upload")
    page.set_input_files(
        "#composer input[type=file]", files=[{"name": "dot.png", "mimeType": "image/png", "buffer": png_bytes((4, 4))}]
    )
    page.press("#composer textarea", "Enter")
    expect(page.locator("#messages li[data-seq] img[alt='dot.png']")).to_be_visible()
    expect(page.locator("#thread-error")).to_be_hidden()
    page.set_input_files(
        "#composer input[type=file]",
        files=[{"name": "notes.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4"}],
    )
    page.press("#composer textarea", "Enter")
    card = page.locator("#messages li[data-seq] .file-card")
    expect(card).to_contain_text("notes.pdf")
    expect(card).to_have_attribute("download", "notes.pdf")


MEMBERS = "#members li .member-name"


def test_members_panel_add_remove_roles_and_seen_after_a_reload(browser, daphnes, make_user):
    """The members panel at both widths (issue 24): names, roles, presence; the owner adds and
    removes people by name, live on the others' pages; a refusal is said in words; "Seen by"
    survives a reload (chat.join's read_positions)."""
    server = daphnes[0]
    alice = make_user("alice", first_name="Alice", last_name="Moreau")
    bob = make_user("bob", first_name="Bob", last_name="Stone")
    carol = make_user("carol", first_name="Carol", last_name="Diaz")
    group = in_thread(services.create_group, owner=alice, title="Team", member_ids=[bob.pk])
    page = open_chat(browser, server, "alice", group.pk, viewport=DESKTOP)
    bob_page = open_chat(browser, server, "bob", group.pk, viewport=PHONE)

    # Seen by bob (his page is open), still after alice reloads: from chat.join, not a live event.
    send(page, "agenda attached")
    expect(page.locator(".receipt")).to_have_text("Seen by Bob Stone")
    page.reload()
    expect(page.locator("#messages li[data-seq] .content")).to_have_text(["agenda attached"])
    expect(page.locator(".receipt")).to_have_text("Seen by Bob Stone")

    # The owner's panel, beside the thread: names, roles, presence; add people; remove.
    page.click("#members-toggle")
    expect(page.locator(MEMBERS)).to_have_text(["Alice Moreau (you)", "Bob Stone"])
    # Bob's role is in the owner's select (below), not said twice.
    expect(page.locator("#members li .member-detail")).to_have_text(["Owner · online", "online"])
    expect(page.locator(f"#member-role-{bob.pk}")).to_have_value("member")
    remove_bob = f"#members li[data-user-id='{bob.pk}'] button"
    clickable(
        page,
        ["#members-toggle", "#members-close", "#member-search", f"#member-role-{bob.pk}", remove_bob, *THREAD_CONTROLS],
    )
    no_overlap(page, [".sidebar", ".thread-head", ".scroller", "#composer", "#members-panel"])
    page.locator("#member-search").press_sequentially("diaz")
    page.click("#member-results .person:has-text('Carol Diaz')")
    expect(page.locator(MEMBERS)).to_have_text(["Alice Moreau (you)", "Bob Stone", "Carol Diaz"])
    expect(page.locator("#members-status")).to_have_text("Carol Diaz was added.")
    screenshot(page, "chat-desktop-members")
    audit(page, "desktop: the members panel")

    # A plain member's panel on a phone takes the screen, with a way back; it updated live.
    expect(bob_page.locator("#thread-meta")).to_contain_text("3 members")
    bob_page.click("#members-toggle")
    expect(bob_page.locator("#thread")).to_be_hidden()
    expect(bob_page.locator(MEMBERS)).to_have_text(["Alice Moreau", "Bob Stone (you)", "Carol Diaz"])
    expect(bob_page.locator("#member-add")).to_be_hidden()  # only owners and admins add
    expect(bob_page.locator("#members li button")).to_have_text(["Leave group"])  # removes nobody
    clickable(bob_page, ["#members-back", f"#members li[data-user-id='{bob.pk}'] button"])
    no_overlap(bob_page, [".members-head", "#members"])
    screenshot(bob_page, "chat-phone-members")
    audit(bob_page, "phone: the members panel")

    # A role changed in the admin site shows live; bob, now an admin, may remove plain members.
    in_thread(services.change_role, actor=None, conversation=group, user_id=bob.pk, role="admin")
    expect(page.locator(f"#member-role-{bob.pk}")).to_have_value("admin")
    expect(bob_page.locator("#members li button")).to_have_text(["Leave group", "Remove"])  # carol, a member
    # Carol became an admin too, but bob's page missed the event: the server refuses, in words.
    stored_unpublished(services.change_role, actor=None, conversation=group, user_id=carol.pk, role="admin")
    bob_page.click(f"#members li[data-user-id='{carol.pk}'] button")
    expect(bob_page.locator("#members-error")).to_have_text("Admins remove plain members only")
    bob_page.click("#members-back")
    expect(bob_page.locator("#thread")).to_be_visible()

    # The owner removes bob: gone from her panel; his page closes the conversation and says why.
    page.click(remove_bob)
    expect(page.locator(MEMBERS)).to_have_text(["Alice Moreau (you)", "Carol Diaz"])
    expect(bob_page.locator("#notice")).to_have_text("You were removed from “Team”.")
    expect(bob_page.locator("#conversations li")).to_have_count(0)
    expect(bob_page.locator("#thread")).to_be_hidden()
    assert not Membership.objects.filter(conversation=group, user=bob).exists()


@pytest.mark.parametrize(
    "viewport,size",
    [pytest.param(DESKTOP, "desktop", id="1280x800"), pytest.param(PHONE, "phone", id="390x844")],
)
def test_the_owner_makes_a_member_admin_and_the_members_open_page_shows_it(browser, daphnes, make_user, viewport, size):
    """Issue 24's role control: the owner's panel has a select per member (labelled with their
    name, keyboard usable: arrows choose, the focus stays); the choice is stored and bob's open
    page (on the other Daphne) shows him as an admin who may now add people; a refusal is said in
    words beside the members and the select shows the stored role again."""
    alice = make_user("alice", first_name="Alice", last_name="Moreau")
    bob = make_user("bob", first_name="Bob", last_name="Stone")
    carol = make_user("carol", first_name="Carol", last_name="Diaz")
    group = in_thread(services.create_group, owner=alice, title="Team", member_ids=[bob.pk, carol.pk])
    in_thread(services.send_message, sender=alice, conversation=group, content="Who runs the launch?")
    page = open_chat(browser, daphnes[0], "alice", group.pk, viewport=viewport)
    bob_page = open_chat(browser, daphnes[1], "bob", group.pk, viewport=viewport)
    bob_page.click("#members-toggle")
    expect(bob_page.locator(f"#members li[data-user-id='{bob.pk}'] .member-detail")).to_have_text("Member · online")
    expect(bob_page.locator("#member-add")).to_be_hidden()
    expect(bob_page.locator("#members select")).to_have_count(0)  # only the owner sets roles

    page.click("#members-toggle")
    bobs_role = page.get_by_role("combobox", name="Role of Bob Stone")
    expect(bobs_role).to_have_value("member")
    expect(page.get_by_role("combobox", name="Role of Carol Diaz")).to_have_value("member")
    expect(page.get_by_role("combobox", name=re.compile("Alice"))).to_have_count(0)  # the owner stays owner
    clickable(page, ["#members-close" if size == "desktop" else "#members-back", f"#member-role-{bob.pk}"])
    no_overlap(page, [".members-head", "#member-add", "#members"])
    screenshot(page, f"chat-{size}-roles")
    audit(page, f"{size}: the owner's role controls")

    # By keyboard: the select takes the focus, an arrow chooses Admin, the focus stays on it.
    bobs_role.focus()
    page.keyboard.press("ArrowDown")
    expect(page.locator("#members-status")).to_have_text("Bob Stone is now an admin.")
    expect(bobs_role).to_have_value("admin")
    expect(bobs_role).to_be_focused()
    screenshot(page, f"chat-{size}-roles-changed")
    assert Membership.objects.get(conversation=group, user=bob).role == "admin"

    # Bob's open page, live: he is an admin now, and admins add people.
    expect(bob_page.locator(f"#members li[data-user-id='{bob.pk}'] .member-detail")).to_have_text("Admin · online")
    expect(bob_page.locator("#member-add")).to_be_visible()
    expect(bob_page.locator("#members li button")).to_have_text(["Leave group", "Remove"])  # carol, a member
    screenshot(bob_page, f"chat-{size}-roles-promoted")
    audit(bob_page, f"{size}: a member made admin")

    # Carol left, and alice's page missed it: the server refuses, in words; her select goes back.
    stored_unpublished(services.remove_member, actor=carol, conversation=group, user_id=carol.pk)
    page.get_by_role("combobox", name="Role of Carol Diaz").select_option("admin")
    expect(page.locator("#members-error")).to_have_text(
        "Could not change Carol Diaz's role: Not a member of this conversation"
    )
    expect(page.get_by_role("combobox", name="Role of Carol Diaz")).to_have_value("member")
    screenshot(page, f"chat-{size}-roles-refused")
    assert not Membership.objects.filter(conversation=group, user=carol).exists()
