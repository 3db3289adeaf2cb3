"""
The batch-tasks page in Debian's Chromium through Playwright (tests/e2e/browser.py): an upload
the server refuses says why under its field, in words; a good one goes from upload to a ZIP
downloaded, with live progress from a real worker, the failed documents listed, and the truth
after a reload. At 1280x800 and 390x844, tasks in every state: pause, resume and cancel work and
are clickable without ``force``, nothing overlaps, screenshots go to ``test-output/screenshots/``
(``tasks-{desktop,phone}.png``, ``tasks-desktop-refused-upload.png``) and axe-core finds no
critical or serious violation. One Chromium for the module, on the session's Daphnes.
"""

import io
import zipfile

import pytest
from playwright.sync_api import Page, expect

from progress.models import BatchTask, TaskDocument
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
from tests.servers import BatchWorker

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect.set_options(timeout=TIMEOUT_MS)
Status = BatchTask.Status


def upload(page: Page, name: str, data: tuple[str, str], template: tuple[str, str]) -> None:
    """Fill the form with a name and two files given as (file name, text), and submit it."""
    page.fill("#task-name", name)
    for selector, (file_name, text) in (("#data-file", data), ("#template-file", template)):
        page.set_input_files(selector, files=[{"name": file_name, "mimeType": "text/plain", "buffer": text.encode()}])
    page.click("#create-submit")


def test_a_refused_upload_says_why_then_a_batch_runs_to_a_downloaded_zip(browser, daphnes, alice):
    server = daphnes[0]
    page = open_page(browser, server, "alice", "/tasks/", viewport=DESKTOP)
    rows = "name,city\n" + "".join(f"P{i},<b>T{i}</b>\n" for i in range(40)) + "Lonely\n"

    # The template asks for a column the data file does not have: refused, in words, at the field.
    upload(page, "notes", ("people.csv", rows), ("note.html", "<p>{{ name }} of {{ town }}</p>"))
    expect(page.locator("#template-error")).to_have_text(
        "The template uses the field “town”, which the data file has no column for (its columns: “name”, “city”)."
    )
    expect(page.locator("#template-file")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#template-file")).to_be_focused()
    screenshot(page, "tasks-desktop-refused-upload")
    audit(page, "desktop: a refused upload")
    # A header row naming a column twice.
    upload(page, "notes", ("people.csv", "name,name\nAda,Bo\n"), ("note.html", "{{ name }}"))
    expect(page.locator("#data-file-error")).to_have_text(
        "The header row names “name” more than once: each column needs a name of its own."
    )
    expect(page.locator("#template-error")).to_be_hidden()
    assert not BatchTask.objects.exists()

    upload(page, "notes", ("people.csv", rows), ("note.html", "<p>{{ name }} of {{ city }}</p>"))
    row = page.locator("#tasks li").first
    expect(row).to_have_attribute("data-status", "pending")  # no worker yet
    expect(page.locator("#data-file-error, #template-error, #create-error")).to_have_count(3)
    expect(page.locator("#create-error")).to_be_empty()  # the refusal is gone
    worker = BatchWorker(server.env)
    try:
        expect(row).to_have_attribute("data-status", "completed", timeout=30_000)
    finally:
        worker.stop()
    expect(row.locator(".percent")).to_have_text("100%")
    expect(row.locator(".meta")).to_have_text("40 documents made, 1 failed (listed below).")
    row.locator(".failures summary").click()
    expect(row.locator(".failures li")).to_have_text(["Row 41: Missing field: city"])

    with page.expect_download() as download:
        row.locator(".download").click()
    with zipfile.ZipFile(io.BytesIO(download.value.path().read_bytes())) as archive:
        assert len(archive.namelist()) == 40
        assert archive.read("document-00001.html") == b"<p>P0 of &lt;b&gt;T0&lt;/b&gt;</p>"

    page.reload()  # a new connection: the list and snapshots come back from the server
    expect(page.locator("#status")).to_have_text("live")
    expect(page.locator("#tasks li .failures li")).to_have_text(["Row 41: Missing field: city"])
    expect(page.locator("#tasks li").first).to_have_attribute("data-status", "completed")


def tasks_in_every_state(owner) -> dict[str, BatchTask]:
    """One task per state a person sees, as the worker would have left them (no worker runs)."""

    def made(name, status, **fields):
        return BatchTask.objects.create(owner=owner, name=name, status=status, **fields)

    tasks = {
        "failed": made("Broken upload", Status.FAILED, error="The data file has no header row", message="Bad input"),
        "completed": made("March invoices", Status.COMPLETED, total=120, current=120, succeeded=118, failed=2),
        "paused": made("Welcome letters", Status.PAUSED, total=500, current=120, stage="rendering", message="Paused"),
        "running": made("Customer notes", Status.RUNNING, total=1000, current=410, stage="rendering", eta_ms=95_000),
        "pending": made("Certificates", Status.PENDING),
    }
    for index in (7, 93):
        TaskDocument.objects.create(task=tasks["completed"], index=index, status="failed", error="Missing field: city")
    return tasks


@pytest.mark.parametrize(
    "viewport,size",
    [pytest.param(DESKTOP, "desktop", id="1280x800"), pytest.param(PHONE, "phone", id="390x844")],
)
def test_tasks_in_every_state_at_desktop_and_phone_widths(browser, daphnes, alice, viewport, size):
    tasks = in_thread(tasks_in_every_state, owner=alice)
    color = "dark" if size == "phone" else "light"  # each width once in each scheme would double the time
    page = open_page(browser, daphnes[0], "alice", "/tasks/", viewport=viewport, color_scheme=color)

    def row(state: str):
        return page.locator(f'#tasks li[data-id="{tasks[state].pk}"]')

    expect(page.locator("#tasks li .name")).to_have_text(
        ["Certificates", "Customer notes", "Welcome letters", "March invoices", "Broken upload"]
    )
    expect(row("running").locator(".meta")).to_have_text("410 of 1,000 documents · rendering · about 1 min 35 s left")
    expect(row("failed").locator(".task-error")).to_have_text("The data file has no header row")
    expect(row("failed").locator(".meta")).to_have_text("Stopped before any document was made.")
    expect(row("completed").locator(".failures summary")).to_have_text("2 documents failed: see why")
    row("completed").locator(".failures summary").click()
    expect(row("completed").locator(".failures li")).to_have_text(
        ["Row 8: Missing field: city", "Row 94: Missing field: city"]
    )
    here = {state: f'#tasks li[data-id="{task.pk}"]' for state, task in tasks.items()}
    clickable(page, ["#task-name", "#data-file", "#template-file", "#create-submit"])
    clickable(page, [f"{here['running']} .pause", f"{here['running']} .cancel", f"{here['paused']} .resume"])
    clickable(page, [f"{here['pending']} .cancel", f"{here['completed']} .download"])
    no_overlap_within(page, "#tasks li", ".task-head > *, .bar-row > *, .actions > *")
    no_overlap_within(page, "#create", ".field")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"
    screenshot(page, f"tasks-{size}", full_page=True)
    audit(page, f"{size}: tasks in every state")

    # Pause, resume, cancel: the server's answer redraws the row; focus stays on the row.
    row("running").locator(".pause").click()
    expect(row("running")).to_have_attribute("data-status", "paused")
    expect(page.locator("#announcer")).to_contain_text("Customer notes: paused.")
    row("running").locator(".resume").click()
    expect(row("running")).to_have_attribute("data-status", "running")
    row("pending").locator(".cancel").click()
    expect(row("pending")).to_have_attribute("data-status", "cancelled")
    expect(row("pending").locator(".badge")).to_have_text("Cancelled")
    assert BatchTask.objects.get(pk=tasks["pending"].pk).status == Status.CANCELLED
