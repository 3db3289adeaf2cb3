"""
The workspaces page in Debian's Chromium through Playwright (tests/e2e/browser.py): two tabs of
one user stay in sync; an edit overtaken by another member keeps the draft and shows theirs
beside it to choose; rename in place, reorder by keyboard and by dragging the handle (a mouse,
and a finger on a touch screen), share by picking a person by name and a role, delete after
confirming. At 1280x800 and 390x844 every control is clickable without ``force``, nothing
overlaps, screenshots go to ``test-output/screenshots/`` (``workspaces-{desktop,phone}-{list,share}.png``,
``workspaces-desktop-conflict.png``, ``workspaces-phone-touch-drag.png``) and axe-core finds no
critical or serious violation. One Chromium for the module, on the session's Daphnes.
"""

from unittest.mock import patch

import pytest
from playwright.sync_api import Page, expect

from realtime.delivery import resync
from realtime.groups import user_group
from realtime.publish import publish
from tests.e2e.browser import (
    DESKTOP,
    PHONE,
    TIMEOUT_MS,
    audit,
    clickable,
    in_thread,
    no_overlap_within,
    open_page,
    screenshot,
)
from workspaces import services
from workspaces.models import Workspace, WorkspaceMember

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect.set_options(timeout=TIMEOUT_MS)
NAMES = "#workspaces li .ws-name"


def row(page: Page, workspace: Workspace, css: str = ""):
    return page.locator(f'#workspaces li[data-id="{workspace.pk}"] {css}'.strip())


def rename(page: Page, workspace: Workspace, name: str) -> None:
    """Click the name to edit it in place and type ``name`` (not saved yet)."""
    row(page, workspace, ".name-button").click()
    row(page, workspace, ".rename input").fill(name)


def test_a_change_in_one_tab_appears_in_the_other(browser, daphnes, alice):
    first = open_page(browser, daphnes[0], "alice", "/workspaces/")
    second = first.context.new_page()
    second.goto(f"{daphnes[0].http}/workspaces/")
    expect(second.locator("#status")).to_have_text("live")

    first.fill("#create-name", "Made in tab one")
    first.press("#create-name", "Enter")
    expect(second.locator(NAMES)).to_have_text(["Made in tab one"])
    made = Workspace.objects.get()
    rename(second, made, "Renamed in tab two")
    second.press(f'#workspaces li[data-id="{made.pk}"] .rename input', "Enter")  # Enter saves
    expect(first.locator(NAMES)).to_have_text(["Renamed in tab two"])
    expect(row(first, made)).to_have_attribute("data-version", "2")
    expect(row(second, made, ".name-button")).to_be_focused()  # back on the name, out of editing


def test_an_overtaken_edit_keeps_the_draft_and_shows_theirs_beside_it(browser, daphnes, alice, bob):
    workspace = in_thread(services.create_workspace, owner=alice, name="Shared plan")
    in_thread(services.share_workspace, actor=alice, workspace_id=workspace.pk, user_id=bob.pk, role="editor")
    page = open_page(browser, daphnes[1], "alice", "/workspaces/", viewport=DESKTOP)  # bob's edit crosses Redis
    rename(page, workspace, "Alice's idea")

    in_thread(
        services.update_workspace, actor=bob, workspace_id=workspace.pk, version=1, changes={"name": "Bob's idea"}
    )
    expect(row(page, workspace)).to_have_attribute("data-version", "2")
    expect(row(page, workspace, ".rename input")).to_have_value("Alice's idea")  # a live update spares the draft
    row(page, workspace, ".rename input").press("Enter")

    conflict = row(page, workspace, ".conflict")
    expect(conflict.locator(".theirs .side-name")).to_have_text("Bob's idea")
    expect(conflict.locator(".mine .side-name")).to_have_text("Alice's idea")
    expect(row(page, workspace, ".rename input")).to_have_value("Alice's idea")  # the draft is kept
    expect(conflict.get_by_role("button", name="Use mine")).to_be_focused()
    stored = Workspace.objects.get(pk=workspace.pk)
    assert (stored.name, stored.version) == ("Bob's idea", 2)
    here = f'#workspaces li[data-id="{workspace.pk}"]'
    clickable(page, [f"{here} .theirs button", f"{here} .mine button", f"{here} .rename input"])
    screenshot(page, "workspaces-desktop-conflict")
    audit(page, "desktop: an edit conflict")

    conflict.get_by_role("button", name="Use mine").click()  # saved over theirs, knowingly
    expect(page.locator(NAMES)).to_have_text(["Alice's idea"])
    expect(row(page, workspace, ".conflict")).to_have_count(0)
    stored.refresh_from_db()
    assert (stored.name, stored.version) == ("Alice's idea", 3)


def test_a_user_with_50_workspaces_of_30kb_settings_sees_them_all(browser, daphnes, alice):
    # 1.5 MB of workspaces: one workspace.list reply could not hold them (issue 20, item 12).
    created = in_thread(
        lambda: [
            services.create_workspace(owner=alice, name=f"Big {n:02}", settings={"blob": "x" * 30_000})
            for n in range(50)
        ]
    )
    page = open_page(browser, daphnes[0], "alice", "/workspaces/")
    expect(page.locator(NAMES)).to_have_text([w.name for w in created])
    expect(page.locator("#notice")).to_be_empty()


def test_a_workspace_whose_event_was_lost_appears_on_resync(browser, daphnes, alice):
    in_thread(services.create_workspace, owner=alice, name="Known")
    page = open_page(browser, daphnes[0], "alice", "/workspaces/")
    expect(page.locator(NAMES)).to_have_text(["Known"])  # the first load is done
    with patch("realtime.delivery.outbox.send_to_layer", side_effect=ConnectionError("test: the event is lost")):
        in_thread(services.create_workspace, owner=alice, name="Created unannounced")
    resync.take_lost_message()  # this process announces nothing: the test sends the resync
    expect(page.locator(NAMES)).to_have_text(["Known"])
    in_thread(publish, group=user_group(alice.pk), event_type="resync", data={"reason": "publish_failed"})
    expect(page.locator(NAMES)).to_have_text(["Known", "Created unannounced"])
    expect(page.locator("#status")).to_have_text("live")  # caught up on the open socket


@pytest.mark.parametrize(
    "viewport,size",
    [pytest.param(DESKTOP, "desktop", id="1280x800"), pytest.param(PHONE, "phone", id="390x844")],
)
def test_reorder_share_and_delete_at_desktop_and_phone_widths(browser, daphnes, make_user, viewport, size):
    alice = make_user("alice", first_name="Alice", last_name="Moreau")
    bob = make_user("bob", first_name="Bob", last_name="Stone")

    def workspaces():
        made = [services.create_workspace(owner=alice, name=n) for n in ("Launch plan", "Budget 2027", "Offsite")]
        roadmap = services.create_workspace(owner=bob, name="Bob's roadmap, with a name long enough to wrap on a phone")
        services.share_workspace(actor=bob, workspace_id=roadmap.pk, user_id=alice.pk, role="viewer")
        return [*made, roadmap]

    plan, budget, offsite, roadmap = in_thread(workspaces)
    color = "dark" if size == "phone" else "light"  # each width once in each scheme would double the time
    page = open_page(browser, daphnes[0], "alice", "/workspaces/", viewport=viewport, color_scheme=color)
    expect(page.locator(NAMES)).to_have_text(["Launch plan", "Budget 2027", "Offsite", roadmap.name])

    first = f'#workspaces li[data-id="{plan.pk}"]'
    clickable(page, ["#create-name", "#create button", f"{first} .handle", f"{first} .name-button", f"{first} .down"])
    clickable(page, [f"{first} .share-toggle", f"{first} .delete", f'#workspaces li[data-id="{roadmap.pk}"] .up'])
    expect(row(page, roadmap, ".name-button")).to_have_count(0)  # a viewer cannot rename
    no_overlap_within(page, "#workspaces li", ".card-main > :not(.actions), .actions > *")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"
    screenshot(page, f"workspaces-{size}-list")
    audit(page, f"{size}: the list")

    # Keyboard: Alt+Down on the handle moves the workspace; focus stays with it.
    row(page, plan, ".handle").focus()
    page.keyboard.press("Alt+ArrowDown")
    expect(page.locator(NAMES)).to_have_text(["Budget 2027", "Launch plan", "Offsite", roadmap.name])
    expect(row(page, plan, ".handle")).to_be_focused()
    expect(page.locator("#announcer")).to_have_text("Moved “Launch plan” to position 2 of 4.")
    row(page, offsite, ".up").click()
    expect(page.locator(NAMES)).to_have_text(["Budget 2027", "Offsite", "Launch plan", roadmap.name])
    if size == "desktop":  # dragging by the handle (a mouse); on a phone the buttons do it
        row(page, roadmap, ".handle").drag_to(row(page, budget), target_position={"x": 40, "y": 4})
        expect(page.locator(NAMES)).to_have_text([roadmap.name, "Budget 2027", "Offsite", "Launch plan"])

    # Share by name and role.
    row(page, plan, ".share-toggle").click()
    search = row(page, plan, "input[type=search]")
    expect(search).to_be_focused()
    search.press_sequentially("sto")
    row(page, plan, ".people .person").click()
    row(page, plan, "select").select_option("viewer")
    clickable(page, [f"{first} select", f"{first} .share-form button[type=submit]"])
    no_overlap_within(page, "#workspaces li", ".share-submit > *")
    screenshot(page, f"workspaces-{size}-share")
    audit(page, f"{size}: sharing")
    row(page, plan, ".share-form button[type=submit]").click()
    expect(row(page, plan, ".members li")).to_have_text(["Alice Moreau (you)Owner", "Bob StoneViewerRemove"])
    assert WorkspaceMember.objects.get(workspace=plan, user=bob).role == "viewer"

    # Delete, after an in-place confirmation.
    row(page, budget, ".delete").click()
    row(page, budget, ".confirm button.danger-solid").click()
    expect(row(page, budget)).to_have_count(0)
    assert not Workspace.objects.filter(pk=budget.pk).exists()


def touch_drag(page: Page, start: dict, end: dict, steps: int = 8, before_lifting=None) -> None:
    """A finger pressed at ``start``, moved to ``end`` in ``steps`` moves and lifted (``{"x", "y"}`` in
    CSS pixels of the window; ``before_lifting()`` runs before it lifts): real touch input through
    the DevTools protocol, so Chromium makes the pointer events of a touch (pointerType "touch") and
    applies touch-action as a phone does."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [start]})
        for n in range(1, steps + 1):
            point = {axis: start[axis] + (end[axis] - start[axis]) * n / steps for axis in ("x", "y")}
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        if before_lifting:
            before_lifting()
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    finally:
        cdp.detach()


def centre(box: dict, y_fraction: float = 0.5) -> dict:
    return {"x": box["x"] + box["width"] / 2, "y": box["y"] + box["height"] * y_fraction}


def test_a_finger_drags_a_workspace_by_its_handle_on_a_phone(browser, daphnes, alice):
    """On a touch screen (390x844) a finger drags a workspace by its handle below the next one: the
    order is stored (it is there after a reload) and reaches the user's other open page (on the
    other Daphne). Elsewhere on a row a finger still scrolls the page (touch-action: none on the
    handle only)."""
    names = [f"Project {n:02}" for n in range(1, 13)]  # enough rows for the page to scroll on a phone
    made = in_thread(lambda: [services.create_workspace(owner=alice, name=name) for name in names])
    other = open_page(browser, daphnes[1], "alice", "/workspaces/", viewport=DESKTOP)
    phone = open_page(browser, daphnes[0], "alice", "/workspaces/", viewport=PHONE, has_touch=True, is_mobile=True)
    expect(phone.locator(NAMES)).to_have_text(names)
    phone.evaluate(
        "window.pointerTypes = []; document.addEventListener('pointerdown', (e) => pointerTypes.push(e.pointerType))"
    )
    touch_actions = phone.evaluate(
        """(id) => [".handle", ".card-body"].map(
            (css) => getComputedStyle(document.querySelector(`#workspaces li[data-id="${id}"] ${css}`)).touchAction)""",
        made[0].pk,
    )
    assert touch_actions == ["none", "auto"]

    # Project 01's handle, dragged into the lower half of Project 02's row: it lands below it.
    touch_drag(
        phone,
        centre(row(phone, made[0], ".handle").bounding_box()),
        centre(row(phone, made[1]).bounding_box(), 0.8),
        before_lifting=lambda: screenshot(phone, "workspaces-phone-touch-drag"),  # the drop mark, for review
    )
    moved = [names[1], names[0], *names[2:]]
    expect(phone.locator(NAMES)).to_have_text(moved)
    assert phone.evaluate("pointerTypes") == ["touch"]
    expect(phone.locator("#announcer")).to_have_text("Moved “Project 01” to position 2 of 12.")
    expect(other.locator(NAMES)).to_have_text(moved)  # live, on the other page
    phone.reload()
    expect(phone.locator("#status")).to_have_text("live")
    expect(phone.locator(NAMES)).to_have_text(moved)  # stored

    # A finger on a row's text (not its handle) scrolls the page and moves nothing.
    assert phone.evaluate("window.scrollY") == 0
    start = centre(row(phone, made[4], ".meta").bounding_box())
    touch_drag(phone, start, {"x": start["x"], "y": start["y"] - 300})
    phone.wait_for_function("window.scrollY > 0")
    expect(phone.locator(NAMES)).to_have_text(moved)
    audit(phone, "phone: after a touch drag")
