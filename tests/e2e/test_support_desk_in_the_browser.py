"""
The admin's support desk in Debian's Chromium through Playwright (tests/e2e/browser.py), at
1280x800 and 390x844: the list counts its rows in words ("2 support conversations"), every column
(the last, "Created at", included) is inside the window or its scroll area, the reply box and its
buttons are clickable without ``force``; screenshots go to ``test-output/screenshots/``
(``desk-{desktop,phone}-{list,conversation}.png``) and axe-core finds no critical or serious
violation in what the desk adds. A request answered from the desk, live on the user's chat page,
is tests/e2e/test_chat_in_the_browser.py's ``test_support_desk_in_the_admin_updates_live``.
"""

import pytest
from playwright.sync_api import expect

from chat import services
from tests.e2e.browser import DESKTOP, PHONE, TIMEOUT_MS, audit, clickable, in_thread, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect.set_options(timeout=TIMEOUT_MS)


@pytest.mark.parametrize(
    "viewport,size",
    [pytest.param(DESKTOP, "desktop", id="1280x800"), pytest.param(PHONE, "phone", id="390x844")],
)
def test_the_desk_list_and_a_conversation_fit_the_window(browser, daphnes, make_user, viewport, size):
    make_user("agent", is_staff=True, first_name="Ann", last_name="Lee")
    alice = make_user("alice", first_name="Alice", last_name="Moreau")
    bob = make_user("bob", first_name="Bob", last_name="Stone")
    conversation, _ = in_thread(services.open_support, user=alice)
    in_thread(
        services.send_message,
        sender=alice,
        conversation=conversation,
        content="My order 4471 has not arrived and the tracking page has said 'in transit' for nine days now.",
    )
    other, _ = in_thread(services.open_support, user=bob)
    in_thread(services.send_message, sender=bob, conversation=other, content="How do I change my e-mail address?")
    page = browser.new_context(viewport=viewport).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{daphnes[0].http}/admin/login/?next=/admin/chat/supportconversation/")
    page.fill("input[name=username]", "agent")
    page.fill("input[name=password]", "agent-pass")
    page.click("input[type=submit]")
    expect(page.locator("#desk-status")).to_have_text("Live: counts update as messages arrive.")
    screenshot(page, f"desk-{size}-list")

    expect(page.locator("h1")).to_have_text("Support desk")
    expect(page.locator(".paginator")).to_contain_text("2 support conversations")
    created = page.locator("#result_list thead th.column-created")
    expect(created).to_contain_text("Created at")
    # The last column is whole: inside the list's box on a desktop; on a phone, in its scroll area.
    fits = created.evaluate(
        """(th, desktop) => {
            const box = th.getBoundingClientRect();
            const results = th.closest('.results');
            if (desktop) return box.right <= results.getBoundingClientRect().right + 0.5;
            return results.scrollWidth > results.clientWidth && getComputedStyle(results).overflowX === 'auto';
        }""",
        size == "desktop",
    )
    assert fits, "the Created at column is cut off"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "the page scrolls sideways"
    clickable(page, [f"[data-desk-conversation='{conversation.pk}']"])
    audit(page, f"{size}: the desk list")

    page.click(f"[data-desk-conversation='{conversation.pk}']")
    expect(page.locator("#desk-status")).to_have_text("live")
    clickable(page, ["#desk-reply textarea", "#desk-reply input[name=reply]", "#desk-reply input[name=close]"])
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "the page scrolls sideways"
    screenshot(page, f"desk-{size}-conversation")
    audit(page, f"{size}: a desk conversation")
