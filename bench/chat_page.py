"""
The chat page with a conversation of 10,000 messages (issue 24: "opens in under 1 s and scrolls
back smoothly"), in Debian's Chromium driven by Playwright (the browser tests' driver).

Creates a throwaway SQLite database holding one group conversation of ``--messages`` messages
(three senders taking turns in runs of one to four, a minute apart, so the thread has days,
grouped messages and receipts), starts Daphne on it (tests/servers.py; pinned to CPU 0, Chromium
and this script to CPU 1), logs the reader in through the form, then measures in the page
(``performance.now()``, a ``MutationObserver`` on the thread):

- **open** (``--opens`` times each): a click on the conversation in the list until the thread
  shows its newest message (the frame after it is in the document); and a reload of
  ``/chat/#conversation-<id>`` from the navigation's start until the same: HTML, scripts, the
  socket, the conversation list, the newest history page;
- **scroll-back** (``--pages`` pages): the scroller put at its top, as a reader reaching it,
  until the next history page is shown above it (50 messages a page: a message older than the
  one at the top is in the document, whether the list keeps every row or a window of them);
  ms per page, how far the
  message the reader was looking at moved on screen (px, 0 when the place is kept), and over
  the whole phase the long tasks (``PerformanceObserver`` ``longtask``: main-thread tasks over
  50 ms) and the frame intervals (``requestAnimationFrame``; 16.7 ms at 60 Hz);
  With ``--profile``, the scroll-back is traced (Chromium's tracing) and the main thread's self
  time a page is reported by event (script, style, layout, pre-paint, paint, GC);
- **live message**: with every page of the scroll-back loaded and the reader back at the
  bottom, a message sent by another member (chat.services.send_message, from this process)
  until the page shows it.

``--baseline DIR`` (a checkout of an earlier commit, e.g. ``git worktree add /tmp/before-chat
<commit>`` with ``.venv`` linked into it) serves that checkout's page from a Daphne started in
it and measures it first, the same way, on the same conversation. Prints a summary line a side
on stderr, then one JSON object: ``{"messages", "baseline"?, "current"}``.

Usage: ``make bench-chat-page`` (``BENCH_ARGS="--messages 10000 --pages 200"``, the defaults;
``BENCH_ARGS="--baseline /tmp/before-chat"``). Loopback only,
bounded (at most 100,000 messages, 1,000 pages, 20 opens). Needs Redis (``REDIS_URL``; make
starts a throwaway one) and Debian's ``chromium``.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.progress import prepare  # noqa: E402
from tests.e2e.browser import CHROMIUM_ARGS  # noqa: E402
from tests.servers import Daphne  # noqa: E402

PAGE_TIMEOUT_MS = 60_000
WORDS = "the deck is ready for review slides need numbers before the call tomorrow morning".split()

# Installed in every document before the page's scripts: when the newest message is shown, and
# every long task of the page's main thread.
INIT_SCRIPT = """
(() => {
  window.__bench = { longTasks: [], newestShownAt: null };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) window.__bench.longTasks.push([entry.startTime, entry.duration]);
  }).observe({ type: "longtask", buffered: true });
  const watch = new MutationObserver(() => {
    if (document.querySelector("#messages li[data-seq='%(newest)d']")) {
      window.__bench.newestShownAt = performance.now();
      watch.disconnect();
    }
  });
  watch.observe(document, { childList: true, subtree: true });
})();
"""

# Resolves after the next frame is painted: a requestAnimationFrame callback runs before the
# paint, the task queued from it after.
AFTER_PAINT = "() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)))"

CLICK_OPEN = """
async ([id, newest]) => {
  const t0 = performance.now();
  document.querySelector(`#conversations li[data-id='${id}'] button`).click();
  while (!document.querySelector(`#messages li[data-seq='${newest}']`)) {
    await new Promise((resolve) => requestAnimationFrame(resolve));
  }
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  return performance.now() - t0;
}
"""

SCROLL_BACK = """
async (pages) => {
  const scroller = document.getElementById("scroller");
  const messages = document.getElementById("messages");
  const first = () => messages.querySelector("li[data-seq]");
  const nextFrame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const frames = [];
  let running = true;
  let last = performance.now();
  const tick = (now) => {
    frames.push(now - last);
    last = now;
    if (running) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  const start = performance.now();
  const perPage = [];
  let placeShift = 0;
  for (let page = 0; page < pages && !document.getElementById("older").hidden; page++) {
    const t0 = performance.now();
    scroller.scrollTop = 0;
    // The reader at the top sees the oldest message loaded: a list that keeps every row has it
    // first already; a windowed one renders it on the scroll event, before the next frame.
    const bottom = scroller.getBoundingClientRect().bottom;
    while (first().getBoundingClientRect().top >= bottom) await nextFrame();
    const anchorSeq = Number(first().dataset.seq);
    const anchorTop = first().getBoundingClientRect().top; // where the reader sees it at the top
    // The page is shown when a message older than that one is in the document.
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`page ${page}: no history after 20 s`)), 20000);
      const watch = new MutationObserver(() => {
        if (Number(first().dataset.seq) < anchorSeq) {
          watch.disconnect();
          clearTimeout(timer);
          resolve();
        }
      });
      watch.observe(messages, { childList: true });
    });
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    perPage.push(performance.now() - t0);
    // The message that was at the top stays where the reader saw it, the page loaded above it.
    const shown = messages.querySelector(`li[data-seq='${anchorSeq}']`);
    placeShift = Math.max(placeShift, Math.abs(shown.getBoundingClientRect().top - anchorTop));
  }
  running = false;
  const end = performance.now();
  const rowsInDocument = messages.querySelectorAll("li").length;
  scroller.scrollTop = 0; // the oldest message loaded, for the count
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  const oldest = Number(first().dataset.seq);
  return { start, end, perPage, frames: frames.slice(1), placeShift, oldest, rowsInDocument };
}
"""

# Back to the newest message, as a reader who scrolled back returns to the conversation: the
# scroller at its bottom, the newest message in the document.
TO_BOTTOM = """
async (newest) => {
  const scroller = document.getElementById("scroller");
  const deadline = performance.now() + 20000;
  for (;;) {
    scroller.scrollTop = scroller.scrollHeight;
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    const atBottom = scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 8;
    if (atBottom && document.querySelector(`#messages li[data-seq='${newest}']`)) return;
    if (performance.now() > deadline) throw new Error("the newest message is not shown at the bottom");
  }
}
"""

# Main-thread trace events (Chromium's tracing, as DevTools' Performance panel records it).
TRACE_CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "v8.execute"]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def ms(value: float) -> float:
    return round(value, 1)


def prepare_conversation(messages: int) -> tuple[int, dict[str, int]]:
    """
    A group of three (reader, ann, ben) with ``messages`` messages a minute apart, the newest now;
    everyone has read them all. Return its id and the users' ids by username.
    """
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from chat.models import Conversation, Membership, Message

    User = get_user_model()
    names = {"reader": ("Rita", "Reader"), "ann": ("Ann", "Lee"), "ben": ("Ben", "Okafor")}
    users = {
        username: User.objects.create_user(username, password=f"{username}-pass", first_name=first, last_name=last)
        for username, (first, last) in names.items()
    }
    with transaction.atomic():
        conversation = Conversation.objects.create(
            kind=Conversation.Kind.GROUP, title="Ten thousand", last_seq=messages
        )
        Membership.objects.bulk_create(
            [
                Membership(
                    conversation=conversation,
                    user=user,
                    role=Membership.Role.OWNER if username == "reader" else Membership.Role.MEMBER,
                    last_read_seq=messages,
                )
                for username, user in users.items()
            ]
        )
        senders = list(users.values())
        rows, sender = [], 0
        for seq in range(1, messages + 1):
            if seq % (1 + seq * 7 % 4) == 0:  # runs of one to four messages by one sender
                sender = (sender + 1) % len(senders)
            words = WORDS[: 3 + seq * 5 % len(WORDS)]
            rows.append(
                Message(conversation=conversation, sender=senders[sender], seq=seq, content=f"{seq}: {' '.join(words)}")
            )
        Message.objects.bulk_create(rows, batch_size=2000)
        # auto_now_add stamped them all now: spread them a minute apart, the newest now.
        now = timezone.now()
        stored = list(Message.objects.filter(conversation=conversation).only("pk", "seq"))
        for message in stored:
            message.created_at = now - timedelta(minutes=messages - message.seq)
        Message.objects.bulk_update(stored, ["created_at"], batch_size=2000)
    return conversation.pk, {username: user.pk for username, user in users.items()}


def log_in(page, http: str) -> None:
    page.goto(f"{http}/chat/")
    page.fill("input[name=username]", "reader")
    page.fill("input[name=password]", "reader-pass")
    page.click("main form button[type=submit]")
    page.wait_for_selector("#status:text('live')")


def send_from_ben(conversation_id: int, users: dict[str, int]) -> float:
    """ben sends a message through the service (publish after commit); return the epoch ms before it."""
    from django.contrib.auth import get_user_model
    from django.db import connections

    from chat import services
    from chat.models import Conversation

    def send() -> float:
        ben = get_user_model().objects.get(pk=users["ben"])
        conversation = Conversation.objects.get(pk=conversation_id)
        sent_at = time.time() * 1000
        services.send_message(sender=ben, conversation=conversation, content="a live one")
        connections.close_all()
        return sent_at

    # Its publish uses async_to_sync, which refuses the thread where Playwright's loop runs.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(send).result()


def main_thread_self_ms(trace: bytes) -> dict[str, float]:
    """
    Self time (ms) by trace event name on the pages' main threads over a whole trace: where the
    time goes (script, style, layout, paint, GC), as DevTools' Performance panel's bottom-up view
    counts it.
    """
    events = json.loads(trace)["traceEvents"]
    mains = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain"
    }
    spans = (
        (e["ts"], e["ts"] + e["dur"], e["name"], (e["pid"], e["tid"]))
        for e in events
        if e.get("ph") == "X" and "dur" in e and (e["pid"], e["tid"]) in mains
    )
    self_us: dict[str, float] = {}
    stacks: dict[tuple, list] = {}
    for begin, finish, name, thread in sorted(spans, key=lambda span: (span[0], -span[1])):
        stack = stacks.setdefault(thread, [])
        while stack and begin >= stack[-1][1]:
            stack.pop()
        if stack:  # a child's time is not its parent's own
            self_us[stack[-1][2]] -= finish - begin
        self_us[name] = self_us.get(name, 0) + finish - begin
        stack.append((begin, finish, name))
    return {name: us / 1000 for name, us in self_us.items()}


def measure(args, server: Daphne, conversation_id: int, users: dict[str, int], newest: int) -> dict:
    """One side's figures: opens, scroll-back (traced with ``--profile``), a live message."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_init_script(INIT_SCRIPT % {"newest": newest})
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        log_in(page, server.http)

        clicks, reloads, reload_long_tasks = [], [], []
        for attempt in range(args.opens):
            # A fresh document each time: an opened thread keeps its history for the page's life.
            page.goto(f"{server.http}/chat/?attempt={attempt}")
            page.wait_for_selector(f"#conversations li[data-id='{conversation_id}']")
            page.wait_for_selector("#status:text('live')")
            clicks.append(page.evaluate(CLICK_OPEN, [conversation_id, newest]))
            page.reload()  # the URL names the conversation now (#conversation-<id>): it opens itself
            page.wait_for_function("window.__bench.newestShownAt !== null")
            page.evaluate(AFTER_PAINT)
            bench = page.evaluate("window.__bench")
            reloads.append(bench["newestShownAt"])
            reload_long_tasks.append(sum(d for start, d in bench["longTasks"] if start <= bench["newestShownAt"]))

        if args.profile:
            browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
        scroll = page.evaluate(SCROLL_BACK, args.pages)
        profile = None
        if args.profile:
            # Traced from just before the scroll-back to just after it.
            self_ms = main_thread_self_ms(browser.stop_tracing())
            pages = max(1, len(scroll["perPage"]))
            top = sorted(self_ms.items(), key=lambda item: -item[1])[:12]
            profile = {
                "main_thread_ms_per_page": ms(sum(self_ms.values()) / pages),
                "self_ms_per_page": {name: round(value / pages, 2) for name, value in top},
            }
        long_tasks = [
            d for start, d in page.evaluate("window.__bench.longTasks") if scroll["start"] <= start <= scroll["end"]
        ]

        page.evaluate(TO_BOTTOM, newest)
        sent_at = send_from_ben(conversation_id, users)
        page.wait_for_function(
            "() => [...document.querySelectorAll('#messages li[data-seq] .content')]"
            ".some((e) => e.textContent === 'a live one')"
        )
        live_ms = time.time() * 1000 - sent_at
        browser.close()

    per_page, frames = scroll["perPage"], scroll["frames"]
    result = {
        "open_click_ms": {"median": ms(statistics.median(clicks)), "max": ms(max(clicks)), "runs": len(clicks)},
        "open_reload_ms": {"median": ms(statistics.median(reloads)), "max": ms(max(reloads)), "runs": len(reloads)},
        "open_reload_long_task_ms": ms(statistics.median(reload_long_tasks)),
        "scroll_back": {
            "pages": len(per_page),
            "messages_loaded": newest - scroll["oldest"] + 1,
            "rows_in_document": scroll["rowsInDocument"],
            "reader_place_shift_px": round(scroll["placeShift"]),
            "per_page_ms": {
                "first": ms(per_page[0]),
                "median": ms(statistics.median(per_page)),
                "p95": ms(percentile(per_page, 0.95)),
                "last": ms(per_page[-1]),
                "max": ms(max(per_page)),
            },
            "long_tasks": {
                "count": len(long_tasks),
                "total_ms": ms(sum(long_tasks)),
                "max_ms": ms(max(long_tasks, default=0)),
            },
            "frames": {
                "count": len(frames),
                "median_ms": ms(statistics.median(frames)),
                "p95_ms": ms(percentile(frames, 0.95)),
                "max_ms": ms(max(frames)),
                "over_50_ms": sum(1 for f in frames if f > 50),
            },
        },
        "live_message_with_all_loaded_ms": ms(live_ms),
    }
    if profile:
        result["scroll_back"]["profile"] = profile
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--messages", type=int, default=10_000, help="messages in the conversation (default %(default)s)"
    )
    parser.add_argument(
        "--pages",
        type=int,
        default=200,
        help="history pages scrolled back, at most (default %(default)s: all of 10,000)",
    )
    parser.add_argument("--opens", type=int, default=5, help="opens measured, each way (default %(default)s)")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of an earlier commit: its page measured first, the same way, on the same conversation",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="trace the scroll-back (Chromium tracing) and report main-thread self time by event; slows it",
    )
    args = parser.parse_args()
    if not (1 <= args.messages <= 100_000 and 1 <= args.pages <= 1000 and 1 <= args.opens <= 20):
        parser.error("bounds: 1 <= messages <= 100000, 1 <= pages <= 1000, 1 <= opens <= 20")
    if args.baseline and not (args.baseline / "static" / "chat" / "chat.js").is_file():
        parser.error(f"--baseline {args.baseline}: not a checkout of this project")
    if not os.environ.get("REDIS_URL"):
        parser.error("REDIS_URL is required (make bench-chat-page starts a throwaway Redis)")
    if not shutil.which("chromium"):
        parser.error("Debian's chromium is required (apt-get install chromium)")

    os.sched_setaffinity(0, {1})  # this script and the Chromium it starts; Daphne gets CPU 0
    sides = ([("baseline", args.baseline.resolve())] if args.baseline else []) + [("current", BASE_DIR)]
    results = {"messages": args.messages}
    with tempfile.TemporaryDirectory(prefix="switchboard-chat-page-") as workdir:
        env = {
            "DATABASE_URL": f"sqlite:///{workdir}/bench.sqlite3",
            "REDIS_URL": os.environ["REDIS_URL"],
            # The page is served over plain HTTP on loopback, as in the browser tests: with DEBUG
            # off the settings ask for HTTPS (secure cookies, redirect).
            "DJANGO_DEBUG": "true",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            # The scroll-back asks for a page as soon as the last is shown, far over a reader's
            # pace: past RATE_BURST (30) frames the per-connection limit answers rate_limited.
            "REALTIME_OVERRIDES": json.dumps({"RATE_PER_MIN": 1_000_000, "RATE_BURST": 10_000}),
        }
        prepare(env)
        started = time.monotonic()
        conversation_id, users = prepare_conversation(args.messages)
        print(f"chat page: {args.messages} messages stored in {time.monotonic() - started:.1f} s", file=sys.stderr)
        for side, tree in sides:
            newest = everything_read(conversation_id)  # each side's live message is one more
            server = Daphne(env, cpus={0}, cwd=tree)
            try:
                results[side] = measure(args, server, conversation_id, users, newest)
            finally:
                server.stop()
            print(summary(side, results[side]), file=sys.stderr)
    print(json.dumps(results))


def everything_read(conversation_id: int) -> int:
    """Mark the conversation read by every member (so each side opens at its newest message); return its last seq."""
    from chat.models import Conversation, Membership

    last_seq = Conversation.objects.get(pk=conversation_id).last_seq
    Membership.objects.filter(conversation_id=conversation_id).update(last_read_seq=last_seq)
    return last_seq


def summary(side: str, result: dict) -> str:
    """One line of a side's figures."""
    scroll = result["scroll_back"]
    return (
        f"chat page ({side}): opens in {result['open_click_ms']['median']} ms (click), "
        f"{result['open_reload_ms']['median']} ms (reload); scroll-back {scroll['pages']} pages, "
        f"{scroll['per_page_ms']['median']} ms a page (last {scroll['per_page_ms']['last']}, "
        f"max {scroll['per_page_ms']['max']}), frames p95 {scroll['frames']['p95_ms']} ms, "
        f"{scroll['long_tasks']['count']} long tasks (longest {scroll['long_tasks']['max_ms']} ms), "
        f"{scroll['rows_in_document']} rows in the document for {scroll['messages_loaded']} messages"
    )


if __name__ == "__main__":
    main()
