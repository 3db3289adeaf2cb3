"""
Batch-task benchmarks (issue 5), against real parts: Daphne (CPU 0), Redis, SQLite, the real worker.

1. Coalescing fan-out: N connections subscribed to one task; a producer in this process reports
   RATE progress updates per second for SECONDS through ``ProgressReporter`` (the API the worker
   uses), then completes the task. Figures: ``task.progress`` frames per subscriber per second
   (the bound is 1000 / PROGRESS_MIN_INTERVAL_MS), time from the final report to each
   subscriber's ``task.completed`` (p50, p99, max), subscribers that missed ``task.started`` or
   ``task.completed`` (lost), and server CPU.
2. Batch generation: ROWS rows into a DOCX template, run by ``manage.py db_worker --batch`` as a
   subprocess: documents per second (from the task's started_at to finished_at) and the worker's
   peak RSS.

Usage: ``make bench-progress`` or ``BENCH_ARGS="--n 1000 --rate 10000 --rows 1000" make bench-progress``.
Loopback only, bounded (at most 5,000 connections, 20,000 updates/s, 10 s, 5,000 rows).
"""

import argparse
import asyncio
import io
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import uvloop
from picows import WSListener, WSMsgType, ws_connect

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.fanout import cpu_seconds, ms, percentile, production_env  # noqa: E402
from tests.servers import Daphne  # noqa: E402

now = time.perf_counter


class Subscriber(WSListener):
    """One connection subscribed to the task: records when each task event arrived."""

    def __init__(self):
        super().__init__()
        self.welcome = asyncio.get_running_loop().create_future()
        self.subscribed = asyncio.get_running_loop().create_future()
        self.progress_at: list[float] = []
        self.events: list[str] = []
        self.completed_at: float | None = None

    def on_ws_frame(self, transport, frame):
        if frame.msg_type != WSMsgType.TEXT:
            return
        message = orjson.loads(frame.get_payload_as_bytes())
        kind, at = message["type"], now()
        if kind == "welcome":
            self.welcome.set_result(True)
        elif kind == "ack":
            self.subscribed.set_result(True)
        elif kind.startswith("task."):
            self.events.append(kind)
            if kind == "task.progress":
                self.progress_at.append(at)
            elif kind == "task.completed":
                self.completed_at = at


def peak_rss_bytes(pid: int) -> int:
    """VmHWM (peak resident set) of process ``pid`` in bytes; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


def prepare(env: dict[str, str]):
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=BASE_DIR, env={**os.environ, **env}, check=True
    )
    os.environ.update(env)
    import django

    django.setup()


def produce(task_id: int, rate: int, seconds: float, marks: dict) -> None:
    """Report ``rate`` updates per second for ``seconds`` (open loop, 1 ms steps), then complete."""
    from django.db import connections

    from progress.models import BatchTask
    from progress.reporter import ProgressReporter

    total = int(rate * seconds)
    reporter = ProgressReporter(task_id)
    reporter.start(total=total)
    marks["started"] = now()
    step = max(1, rate // 1000)
    done = 0
    while done < total:
        target = int((now() - marks["started"]) * rate)
        while done < min(target, total):
            done = min(done + step, total)
            reporter.progress(done, succeeded=done)
        time.sleep(0.0005)
    marks["reports"] = done
    marks["final"] = now()
    reporter.finish(BatchTask.Status.COMPLETED, current=total, succeeded=total)
    marks["sent_progress"] = reporter.sent
    connections.close_all()


async def coalescing(args, server: Daphne, token: str, task_id: int) -> dict:
    gate = asyncio.Semaphore(50)

    async def subscribe():
        async with gate:
            transport, client = await ws_connect(Subscriber, f"{server.url}?token={token}", enable_auto_pong=True)
            await asyncio.wait_for(client.welcome, 30)
            transport.send(
                WSMsgType.TEXT, orjson.dumps({"type": "task.subscribe", "ref": "s", "data": {"task_ids": [task_id]}})
            )
            await asyncio.wait_for(client.subscribed, 30)
            return transport, client

    connections = await asyncio.gather(*(subscribe() for _ in range(args.n)))
    clients = [client for _, client in connections]
    await asyncio.sleep(1)
    marks: dict = {}
    cpu_before, wall_before = cpu_seconds(server.proc.pid), now()
    producer = asyncio.get_running_loop().run_in_executor(None, produce, task_id, args.rate, args.seconds, marks)
    await producer
    deadline = now() + 30
    while now() < deadline and any(c.completed_at is None for c in clients):
        await asyncio.sleep(0.02)
    server_cpu = 100 * (cpu_seconds(server.proc.pid) - cpu_before) / (now() - wall_before)
    for transport, _ in connections:
        transport.disconnect()
    span = marks["final"] - marks["started"]
    per_second = sorted(len(c.progress_at) / span for c in clients)
    final = sorted(c.completed_at - marks["final"] for c in clients if c.completed_at is not None)
    lost = sum(1 for c in clients if "task.started" not in c.events or c.completed_at is None)
    # Within one subscriber, the tightest spacing of two progress frames (coalescing interval).
    gaps = sorted(min((b - a for a, b in itertools.pairwise(c.progress_at)), default=span) for c in clients)
    return {
        "n": args.n,
        "offered_updates_per_s": args.rate,
        "reports": marks["reports"],
        "span_s": round(span, 2),
        "progress_events_published": marks["sent_progress"],
        "progress_frames_per_subscriber_per_s_max": round(per_second[-1], 2),
        "progress_frames_per_subscriber_per_s_min": round(per_second[0], 2),
        "min_gap_between_progress_frames_ms": ms(gaps[0]),
        "final_to_completed_p50_ms": ms(percentile(final, 0.5)),
        "final_to_completed_p99_ms": ms(percentile(final, 0.99)),
        "final_to_completed_max_ms": ms(final[-1] if final else None),
        "subscribers_missing_start_or_completion": lost,
        "server_cpu_pct": round(server_cpu, 1),
    }


def batch_generation(rows: int, env: dict[str, str], owner) -> dict:
    import docx
    from django.core.files.uploadedfile import SimpleUploadedFile

    from progress import services
    from progress.models import BatchTask

    document = docx.Document()
    document.add_heading("Invoice {{ number }}", 1)
    document.add_paragraph("Dear {{ name }}, of {{ city }}:")
    document.add_paragraph("You owe {{ amount }} for {{ item }}. Thank you.")
    template = io.BytesIO()
    document.save(template)
    data = "number,name,city,amount,item\n" + "".join(
        f"{i},Customer {i},City {i % 50},{i * 3.5:.2f},Item {i % 17}\n" for i in range(rows)
    )
    task = services.create_task(
        owner=owner,
        name="bench",
        data_file=SimpleUploadedFile("rows.csv", data.encode()),
        template=SimpleUploadedFile("invoice.docx", template.getvalue()),
    )
    started = now()
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay"],
        cwd=BASE_DIR,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak_rss = 0
    while worker.poll() is None:
        peak_rss = max(peak_rss, peak_rss_bytes(worker.pid))
        time.sleep(0.2)
    wall = now() - started
    task = BatchTask.objects.get(pk=task.pk)
    seconds = (task.finished_at - task.started_at).total_seconds()
    return {
        "rows": rows,
        "status": task.status,
        "succeeded": task.succeeded,
        "generation_s": round(seconds, 2),
        "documents_per_s": round(task.succeeded / seconds, 1) if seconds else None,
        "worker_wall_s_incl_startup": round(wall, 2),
        "worker_peak_rss_mb": round(peak_rss / 2**20, 1),
        "zip_bytes": task.result.size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="subscribers of the task (default %(default)s)")
    parser.add_argument("--rate", type=int, default=10_000, help="progress updates per second (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=5, help="how long the producer reports (default %(default)s)")
    parser.add_argument("--rows", type=int, default=1000, help="rows of the DOCX batch (default %(default)s)")
    args = parser.parse_args()
    if not (1 <= args.n <= 5000 and 1 <= args.rate <= 20_000 and 0 < args.seconds <= 10 and 1 <= args.rows <= 5000):
        parser.error("bounds: 1 <= n <= 5000, 1 <= rate <= 20000, 0 < seconds <= 10, 1 <= rows <= 5000")
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        parser.error("REDIS_URL is required (make bench-progress starts a throwaway Redis)")
    os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as workdir:
        env = {
            **production_env(redis_url, f"sqlite:///{workdir}/bench.sqlite3"),
            "MEDIA_ROOT": f"{workdir}/media",
            # One load generator, one user, many connections: the per-IP and per-user caps are not under test.
            "REALTIME_OVERRIDES": json.dumps(
                {
                    "CONNECTIONS_PER_IP_PER_MIN": 1_000_000,
                    "CONNECTIONS_PER_IP_PER_S": 1_000_000,
                    "MAX_CONNECTIONS_PER_USER": 1_000_000,
                }
            ),
        }
        prepare(env)
        from django.contrib.auth import get_user_model
        from rest_framework_simplejwt.tokens import AccessToken

        from progress import services

        owner = get_user_model().objects.create_user("bench-owner", password="!")
        task = services.create_task(owner=owner, name="coalescing")
        server = Daphne(env, cpus={0})
        try:
            fanout = uvloop.run(coalescing(args, server, str(AccessToken.for_user(owner)), task.pk))
        finally:
            server.stop()
        batch = batch_generation(args.rows, env, owner)
    result = {"coalescing": fanout, "batch": batch}
    print(json.dumps(result))
    print(
        f"coalescing n={fanout['n']} at {args.rate} updates/s: <= {fanout['progress_frames_per_subscriber_per_s_max']}"
        f" progress frames/s per subscriber; final -> task.completed p50 {fanout['final_to_completed_p50_ms']} ms,"
        f" p99 {fanout['final_to_completed_p99_ms']} ms; lost {fanout['subscribers_missing_start_or_completion']}."
        f" batch: {batch['documents_per_s']} DOCX/s over {args.rows} rows,"
        f" worker peak RSS {batch['worker_peak_rss_mb']} MB",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
