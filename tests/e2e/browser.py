"""
What every browser test shares: Playwright (Python) driving Debian's Chromium (/usr/bin/chromium;
Playwright's own browser download does not work here), the two window sizes of issue 24, and the
checks of a page as a person uses it: every control clickable without ``force``, nothing
overlapping, a screenshot saved under ``test-output/screenshots/`` for review, and axe-core
(tests/e2e/axe, installed by ``make test``) finding no critical or serious violation. The
``chromium`` and ``browser`` fixtures are in tests/e2e/conftest.py.
"""

from concurrent.futures import ThreadPoolExecutor

from django.db import connections
from playwright.sync_api import Page, expect

from tests.servers import BASE_DIR

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
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = BASE_DIR / "test-output" / "screenshots"
AXE = BASE_DIR / "tests" / "e2e" / "axe" / "node_modules" / "axe-core" / "axe.min.js"


class Contexts:
    """The module's browser, for one test: every context it opens is closed after the test, so no
    page of it stays connected (online) to the shared servers for the next test."""

    def __init__(self, browser):
        self.browser = browser
        self.opened = []

    def new_context(self, **options):
        context = self.browser.new_context(**options)
        self.opened.append(context)
        return context


def in_thread(fn, **kwargs):
    """Run a service in a thread of its own: its publish uses async_to_sync, which refuses to run
    on the thread where Playwright's event loop lives."""
    with ThreadPoolExecutor(1) as pool:
        try:
            return pool.submit(fn, **kwargs).result()
        finally:
            pool.submit(connections.close_all).result()


def audit(page: Page, state: str) -> None:
    """axe-core on the page as it is now: no critical or serious violation (``state`` names it)."""
    if not AXE.exists():
        raise RuntimeError("The accessibility audit needs axe-core: run the tests with `make test` (npm ci).")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    violations = page.evaluate("axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in violations
        if v["impact"] in ("critical", "serious")
    ]
    assert not bad, f"{state}: {bad}"


def screenshot(page: Page, name: str, full_page: bool = False) -> None:
    """Save the window (or the whole page) as ``test-output/screenshots/<name>.png`` (git-ignored) for review."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def clickable(page: Page, selectors: list[str]) -> None:
    """Each control is visible, inside the window and would receive the click (nothing covers it):
    Playwright's actionability checks, without clicking and without ``force``."""
    width = page.viewport_size["width"]
    for selector in selectors:
        control = page.locator(selector)
        control.click(trial=True, timeout=5_000)
        box = control.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, f"{selector} is outside the window: {box}"


def no_overlap(page: Page, selectors: list[str]) -> None:
    """The visible regions do not overlap one another, and the page does not scroll sideways."""
    boxes = {s: page.locator(s).bounding_box() for s in selectors if page.locator(s).is_visible()}
    items = list(boxes.items())
    for i, (a, box_a) in enumerate(items):
        for b, box_b in items[i + 1 :]:
            apart = (
                box_a["x"] + box_a["width"] <= box_b["x"] + 0.5
                or box_b["x"] + box_b["width"] <= box_a["x"] + 0.5
                or box_a["y"] + box_a["height"] <= box_b["y"] + 0.5
                or box_b["y"] + box_b["height"] <= box_a["y"] + 0.5
            )
            assert apart, f"{a} {box_a} overlaps {b} {box_b}"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"


def no_overlap_within(page: Page, container: str, selector: str) -> None:
    """In each ``container``, the visible elements matching ``selector`` (its controls) do not
    overlap one another: wrapped, not piled up, at this width."""
    overlaps = page.evaluate(
        """([container, selector]) => {
            const bad = [];
            for (const box of document.querySelectorAll(container)) {
                const rects = [...box.querySelectorAll(selector)]
                    .filter((e) => e.offsetParent !== null)
                    .map((e) => [e, e.getBoundingClientRect()]);
                rects.forEach(([a, ra], i) => rects.slice(i + 1).forEach(([b, rb]) => {
                    const apart = ra.right <= rb.left + 0.5 || rb.right <= ra.left + 0.5
                        || ra.bottom <= rb.top + 0.5 || rb.bottom <= ra.top + 0.5;
                    if (!apart) bad.push(`${a.outerHTML.slice(0, 80)} / ${b.outerHTML.slice(0, 80)}`);
                }));
            }
            return bad;
        }""",
        [container, selector],
    )
    assert not overlaps, f"overlapping in {container}: {overlaps[:3]}"


def open_page(browser, server, username: str, path: str, **context_options) -> Page:
    """Log ``username`` in through the form (password ``<username>-pass``) on the way to ``path``,
    in a new browser context (``context_options``: ``viewport``, ``color_scheme``...), and wait
    until the page's socket is live (``#status``)."""
    page = browser.new_context(**context_options).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{server.http}{path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"{username}-pass")
    page.click("main form button[type=submit]")
    expect(page.locator("#status")).to_have_text("live", timeout=TIMEOUT_MS)
    return page
