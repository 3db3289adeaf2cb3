"""
Compatibility endpoints against the native one: ``bench/fanout.py --endpoint`` for each seed's
endpoint and ``/ws/`` in the same topic, taking turns, ``--runs`` times each; medians and ratios.

The issue's bound: a seed's endpoint costs at most 1.2x the native endpoint's server CPU per
delivery (``server_cpu_us_per_delivery``, the figure that moves least between runs; fanout.py).
Topics and their endpoints (docs/migration.md): chat through seeds 002 and 004, task progress
through seed 001 (batched by its default ``PROGRESS_SEED001_BATCH_*``; each update of a batch is
a delivery), the room ``game:bench`` through seed 003's Socket.IO, a workspace's updates through
seed 000 (``TOPIC_ARGS``). Within a run of the loop every
endpoint of every topic runs once, native first, so the noise of a busy moment spreads over all
of them, and the median of a few runs sets one bad run aside (as bench/alternate.py does).

Usage: ``make bench-adapters`` or ``BENCH_ARGS="--n 3000 --runs 3" make bench-adapters``. Prints
each run and the table (markdown) on stderr, one JSON object on stdout. Loopback only, bounded
like fanout.py (about 30 s per run at N=1,000).
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.alternate import medians_of  # noqa: E402
from bench.fanout import ENDPOINTS  # noqa: E402

FIELDS = ("server_cpu_us_per_delivery", "last_p50_ms", "last_p99_ms", "p99_ms", "lost_deliveries", "generator_cpu_pct")
# The bound on an endpoint's server CPU per delivery, over the native endpoint's.
LIMIT = 1.2
# fanout.py's defaults (200 messages at 20/s) but for the workspace: each of its events carries
# the N + 1 members (about 90 KB at N=1,000), 20 events at 2/s keep the load generator below a core.
TOPIC_ARGS = {"workspace": ["--count", "20", "--rate", "2"]}


def run(n: int, topic: str, endpoint: str) -> dict:
    """One ``fanout.py`` run; its JSON result."""
    out = subprocess.run(
        [sys.executable, "bench/fanout.py", "--n", str(n), "--topic", topic, "--endpoint", endpoint]
        + TOPIC_ARGS.get(topic, []),
        cwd=BASE_DIR,
        check=True,
        stdout=subprocess.PIPE,
        timeout=600,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(n: int, runs: int, medians: dict[str, dict[str, dict]]) -> str:
    """The medians as a markdown table, each endpoint's CPU per delivery and last p99 over native's."""
    lines = [
        f"N={n}, medians of {runs} runs; server CPU per delivery (us) and last-delivery latency (ms):",
        "",
        "| topic | endpoint | CPU/delivery | / native | last p50 | last p99 | / native | lost |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for topic, by_endpoint in medians.items():
        native = by_endpoint["native"]
        for endpoint, figures in by_endpoint.items():
            cpu, p99 = figures["server_cpu_us_per_delivery"], figures.get("last_p99_ms")
            cpu_ratio = cpu / native["server_cpu_us_per_delivery"]
            p99_ratio = f"{p99 / native['last_p99_ms']:.2f}x" if p99 and native.get("last_p99_ms") else "-"
            flag = " **over 1.2x**" if cpu_ratio > LIMIT else ""
            p50, p99 = (None if v is None else round(v, 1) for v in (figures.get("last_p50_ms"), p99))
            lines.append(
                f"| {topic} | {endpoint} | {cpu:.1f} | {cpu_ratio:.2f}x{flag} | {p50} | {p99} | {p99_ratio} | "
                f"{figures['lost_deliveries']:g} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="subscribers (default %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="runs per endpoint (default %(default)s)")
    parser.add_argument("--topics", nargs="+", choices=ENDPOINTS, default=list(ENDPOINTS))
    args = parser.parse_args()
    if not 1 <= args.runs <= 10:
        parser.error("bounds: 1 <= runs <= 10")
    results = {topic: {endpoint: [] for endpoint in ENDPOINTS[topic]} for topic in args.topics}
    for i in range(args.runs):
        for topic in args.topics:
            for endpoint in ENDPOINTS[topic]:
                result = run(args.n, topic, endpoint)
                results[topic][endpoint].append(result)
                figures = ", ".join(f"{field} {result.get(field)}" for field in FIELDS)
                print(f"run {i + 1} {topic} {endpoint}: {figures}", file=sys.stderr, flush=True)
    medians = medians_of(results, FIELDS)
    print(table(args.n, args.runs, medians), file=sys.stderr)
    print(json.dumps({"n": args.n, "runs": args.runs, "medians": medians, "results": results}))


if __name__ == "__main__":
    main()
