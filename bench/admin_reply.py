"""
Support-desk latency (issue 3): from a staff member's reply posted in the Django admin to the
user's open socket, against real parts: Daphne (CPU 0) with Redis and SQLite, a real admin login
(session and CSRF), a real WebSocket client.

For each of COUNT replies: POST the desk's reply form (exactly what the "Send reply" button
sends), and time from just before the POST to the moment the user's socket receives that
``chat.message``. Prints median, p99 and max, and how many replies did not arrive (lost).

Usage: ``make bench-admin-reply`` or ``BENCH_ARGS="--count 100" make bench-admin-reply``.
Loopback only, bounded (at most 1,000 replies).
"""

import argparse
import asyncio
import http.cookiejar
import json
import os
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import websockets

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.fanout import ms, percentile  # noqa: E402
from bench.progress import prepare  # noqa: E402
from tests.servers import Daphne  # noqa: E402

now = time.perf_counter


class AdminSession:
    """A staff member's browser session in the admin: logs in through the form, posts replies."""

    def __init__(self, base: str):
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def csrf(self) -> str:
        return next(c.value for c in self.cookies if c.name == "csrftoken")

    def post(self, path: str, fields: dict) -> int:
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": self.csrf(), **fields}).encode()
        request = urllib.request.Request(self.base + path, data=body, headers={"Referer": self.base + path})
        with self.opener.open(request) as response:
            return response.status

    def login(self, username: str, password: str) -> None:
        self.opener.open(self.base + "/admin/login/").read()
        self.post("/admin/login/?next=/admin/", {"username": username, "password": password, "next": "/admin/"})
        if not any(c.name == "sessionid" for c in self.cookies):
            raise RuntimeError("admin login failed")


async def measure(server: Daphne, token: str, conversation_id: int, staff: AdminSession, count: int) -> dict:
    latencies: list[float] = []
    async with websockets.connect(f"{server.url}?token={token}", open_timeout=10) as socket:
        while json.loads(await socket.recv())["type"] != "welcome":
            pass
        path = f"/admin/chat/supportconversation/{conversation_id}/change/"
        for i in range(count):
            content = f"reply {i}"
            started = now()
            post = asyncio.create_task(
                asyncio.to_thread(
                    staff.post, path, {"content": content, "client_msg_id": f"bench-{i}", "reply": "Send reply"}
                )
            )
            try:
                async with asyncio.timeout(5):
                    while True:
                        frame = json.loads(await socket.recv())
                        if frame["type"] == "chat.message" and frame["data"]["content"] == content:
                            latencies.append(now() - started)
                            break
            except TimeoutError:
                pass
            await post
    return {
        "replies": count,
        "delivered": len(latencies),
        "lost": count - len(latencies),
        "p50_ms": ms(percentile(sorted(latencies), 0.5)),
        "p99_ms": ms(percentile(sorted(latencies), 0.99)),
        "max_ms": ms(max(latencies)) if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100, help="replies (default %(default)s)")
    args = parser.parse_args()
    if not 1 <= args.count <= 1000:
        parser.error("bounds: 1 <= count <= 1000")
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        parser.error("REDIS_URL is required (make bench-admin-reply starts a throwaway Redis)")
    os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as workdir:
        env = {
            "DATABASE_URL": f"sqlite:///{workdir}/bench.sqlite3",
            "REDIS_URL": redis_url,
            "MEDIA_ROOT": f"{workdir}/media",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
        prepare(env)
        from django.contrib.auth import get_user_model
        from rest_framework_simplejwt.tokens import AccessToken

        from chat import services

        User = get_user_model()
        user = User.objects.create_user("bench-user", password="bench-user-pass")
        User.objects.create_user("bench-agent", password="bench-agent-pass", is_staff=True)
        conversation, _ = services.open_support(user=user)
        services.send_message(sender=user, conversation=conversation, content="I need help")
        server = Daphne(env, cpus={0})
        try:
            staff = AdminSession(server.http)
            staff.login("bench-agent", "bench-agent-pass")
            result = asyncio.run(measure(server, str(AccessToken.for_user(user)), conversation.pk, staff, args.count))
        finally:
            server.stop()
    print(json.dumps(result))
    print(
        f"admin reply -> user socket over {result['replies']} replies: p50 {result['p50_ms']} ms,"
        f" p99 {result['p99_ms']} ms, max {result['max_ms']} ms; lost {result['lost']}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
