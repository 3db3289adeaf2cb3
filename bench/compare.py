"""
Side by side (issue 7): four servers measured in the same run, one at a time, each pinned to CPU 0
with the load on CPU 1, by the measures of ``../shared/wsbench`` (``WSBENCH_DIR``, its README):

- Switchboard under Daphne and under uvicorn, with Redis and SQLite, driven by our generators
  (authenticated users, every chat message a persisted ``chat.send``);
- the references, driven by ``loadgen.py``: the Node ``ws`` room server (``ws`` installed with npm
  into ``bench/.node``) and the bare ASGI app served by Daphne (Daphne's own floor: no Django, no
  Channels, no layer).

Measures (``--measures``, all by default):

1. ``fanout`` (m1; ``bench/fanout.py``): one room of N (100 / 1,000 / 3,000), 20 events/s for 5 s:
   per-delivery and last-delivery p50/p99, lost deliveries; ratios of last-delivery p99 over the
   bare-ASGI reference's and Node's; server CPU per delivery (us) for every server. Switchboard
   also with N subscribers of one batch task and 20 progress reports/s (``-task`` rows,
   ``--topic task``).
2. ``chat`` (m2; ``bench/chat_rate.py``): 200 clients in rooms of 10, offered rate stepped: the
   highest clean rate (p99 < 100 ms, nothing lost), with ratios; Switchboard on SQLite, and under
   Daphne also on a throwaway database of the machine's PostgreSQL.
3. ``idle`` (m3; ``bench/idle.py``): 1,000 / 5,000 / 10,000 idle connections: RSS per connection
   and connect rate (Switchboard: and server CPU per connect), Switchboard also as two Daphne
   processes sharing Redis; ratios over Node and bare ASGI.

Prints the tables on stderr and one JSON object on stdout.

Before and after a change, in the same run: ``--baseline DIR`` (a checkout of the earlier commit,
``git worktree add /tmp/before <rev>``) runs every Switchboard row from DIR too, right after the
current tree's, as ``<row>@baseline``; ``--servers daphne`` leaves the uvicorn rows out.

Usage: ``make bench-compare`` or ``BENCH_ARGS="--measures fanout --n 100 1000" make bench-compare``.
Loopback only, bounded (N <= 3,000, 10,000 idle connections; about 17 minutes in all).
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from tests.servers import free_port, wait_for_port  # noqa: E402

WSBENCH_DIR = Path(os.environ.get("WSBENCH_DIR", BASE_DIR.parent / "shared" / "wsbench"))
NODE_DIR = BASE_DIR / "bench" / ".node"
WS_VERSION = "8.23.0"
COUNT, INTERVAL_S = 100, 0.05
REFERENCES = (("node-ws", "node-ws"), ("asgi-raw-daphne", "asgi-raw"))
# Set from the command line: the Switchboard servers measured, and the --baseline checkout.
SERVERS: tuple[str, ...] = ("daphne", "uvicorn")
BASELINE: Path | None = None
IDLE_FIELDS = ("open", "rss_per_conn_kb", "connect_rate_per_s", "server_cpu_ms_per_connect")
FANOUT_FIELDS = ("p50_ms", "p99_ms", "last_p50_ms", "last_p99_ms", "lost_deliveries", "server_cpu_us_per_delivery")


def on_load_core() -> None:
    os.sched_setaffinity(0, {1})


def on_server_core() -> None:
    os.sched_setaffinity(0, {0})


def product(script: str, *args: str, tree: Path = BASE_DIR) -> dict:
    """
    Run ``bench/<script> args`` of checkout ``tree`` (it starts Switchboard itself) and return its
    JSON result; with the checkout's own ``.venv`` when it has one (a baseline measured with its
    own requirements), else this one's.
    """
    own = tree / ".venv" / "bin" / "python"
    python = str(own) if tree != BASE_DIR and own.is_file() else sys.executable
    out = subprocess.run([python, f"bench/{script}", *args], cwd=tree, capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise RuntimeError(f"bench/{script} {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def node_modules() -> Path:
    """``bench/.node/node_modules`` with ``ws`` in it, installed from the npm registry the first time."""
    if not (NODE_DIR / "node_modules" / "ws").is_dir():
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund", f"ws@{WS_VERSION}"],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return NODE_DIR / "node_modules"


def asgi_raw_command(port: int) -> list[str]:
    """The bare ASGI reference on Daphne (``s8_asgi_raw:app``: no Django, no Channels), run from ``WSBENCH_DIR``."""
    return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", "s8_asgi_raw:app"]


def reference(name: str, measure: str, options: list[str]) -> dict:
    """Start reference ``name`` (node-ws or asgi-raw) on CPU 0 and run ``loadgen.py measure options`` against it."""
    port = free_port()
    if name == "node-ws":
        command, env = ["node", "s1_ws.js", str(port)], {**os.environ, "NODE_PATH": str(node_modules())}
    else:
        command, env = asgi_raw_command(port), dict(os.environ)
    server = subprocess.Popen(
        command,
        cwd=WSBENCH_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=on_server_core,
    )
    try:
        wait_for_port(port, server)
        out = subprocess.run(
            [
                sys.executable,
                str(WSBENCH_DIR / "loadgen.py"),
                measure,
                "--url",
                f"ws://127.0.0.1:{port}/",
                "--pids",
                str(server.pid),
                *options,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=900,
        )
    finally:
        server.terminate()
        server.wait(10)
    return json.loads(out.stdout.strip().splitlines()[-1])


def trees() -> list[tuple[str, Path]]:
    """The checkouts whose Switchboard rows are measured: this one, then ``--baseline``'s (suffix ``@baseline``)."""
    return [("", BASE_DIR)] + ([("@baseline", BASELINE)] if BASELINE else [])


def ratio(value: float | None, reference: float | None) -> str:
    return f"{value / reference:.2f}x" if value and reference else "-"


def reference_cpu_us_per_delivery(run: dict) -> float | None:
    """
    A reference's server CPU per delivery (us) from loadgen's m1 run: its ``server_cpu_pct`` is
    over the window from the first send until the last delivery (``send_span_s`` + ``drain_s``).
    """
    if run.get("server_cpu_pct") is None or not run.get("deliveries"):
        return None
    seconds = run["server_cpu_pct"] / 100 * (run["send_span_s"] + run["drain_s"])
    return round(seconds * 1e6 / run["deliveries"], 1)


def fanout(ns: list[int]) -> dict[str, dict[int, dict]]:
    """Measure 1: last-delivery latency of one room of N, every server; and of one task's N subscribers."""
    options = ["--n", *map(str, ns), "--count", str(COUNT), "--interval", str(INTERVAL_S)]
    results = {name: {run["n"]: run for run in reference(ref, "m1", options)["runs"]} for name, ref in REFERENCES}
    for runs in results.values():
        for run in runs.values():
            run["server_cpu_us_per_delivery"] = reference_cpu_us_per_delivery(run)
    for topic in ("chat", "task"):
        for server, (suffix, tree) in ((server, t) for server in SERVERS for t in trees()):
            name = f"switchboard-{server}" + ("-task" if topic == "task" else "") + suffix
            results[name] = {
                n: product(
                    "fanout.py",
                    "--server",
                    server,
                    "--topic",
                    topic,
                    "--n",
                    str(n),
                    "--count",
                    str(COUNT),
                    "--rate",
                    str(1 / INTERVAL_S),
                    tree=tree,
                )
                for n in ns
            }
    table = {
        server: {n: {field: run.get(field) for field in FANOUT_FIELDS} for n, run in runs.items()}
        for server, runs in results.items()
    }
    log(
        f"{'fan-out':32} {'N':>5} {'p50':>9} {'p99':>9} {'last p50':>9} {'last p99':>9} {'lost':>6}"
        f" {'/ asgi-raw':>11} {'/ node':>8} {'CPU us':>7}  (ms; ratios of last-delivery p99; server CPU per delivery)"
    )
    for n in ns:
        for server, runs in table.items():
            run = runs[n]
            ratios = [ratio(run["last_p99_ms"], table[ref][n]["last_p99_ms"]) for ref in ("asgi-raw-daphne", "node-ws")]
            log(
                f"{server:32} {n:>5} {run['p50_ms']!s:>9} {run['p99_ms']!s:>9} {run['last_p50_ms']!s:>9}"
                f" {run['last_p99_ms']!s:>9} {run['lost_deliveries']!s:>6} {ratios[0]:>11} {ratios[1]:>8}"
                f" {run.get('server_cpu_us_per_delivery')!s:>7}"
            )
    return table


def chat() -> dict[str, dict]:
    """Measure 2: the highest clean chat rate of 200 clients in rooms of 10 (Switchboard: every message persisted)."""
    results = {name: reference(ref, "m2", ["--clients", "200", "--rooms", "20"]) for name, ref in REFERENCES}
    for server in SERVERS:
        for suffix, tree in trees():
            results[f"switchboard-{server}{suffix}"] = product("chat_rate.py", "--server", server, tree=tree)
    if "daphne" in SERVERS:  # production's database too (bench/databases.py: a throwaway one; this tree only)
        results["switchboard-daphne-postgres"] = product("chat_rate.py", "--server", "daphne", "--database", "postgres")
    table = {
        server: {
            "max_clean_rate": run.get("max_clean_rate"),
            "steps": [
                {key: step.get(key) for key in ("offered_rate", "achieved_rate", "p99_ms", "lost_deliveries", "clean")}
                for step in run["steps"]
            ],
        }
        for server, run in results.items()
    }
    log(f"{'chat':32} {'max clean msgs/s':>17} {'/ asgi-raw':>11} {'/ node':>8}")
    for server, run in table.items():
        ratios = [ratio(run["max_clean_rate"], table[ref]["max_clean_rate"]) for ref in ("asgi-raw-daphne", "node-ws")]
        log(f"{server:32} {run['max_clean_rate']!s:>17} {ratios[0]:>11} {ratios[1]:>8}")
    return table


def idle(levels: list[int]) -> dict[str, dict]:
    """Measure 3: RSS per idle connection and connect rate at each level; Daphne also as two processes."""
    options = ["--levels", *map(str, levels)]
    results = {name: reference(ref, "m3", options) for name, ref in REFERENCES}
    rows = (
        ("switchboard-daphne", ["--server", "daphne"]),
        ("switchboard-daphne-x2", ["--server", "daphne", "--processes", "2"]),
        ("switchboard-uvicorn", ["--server", "uvicorn"]),
    )
    for label, args in rows:
        if args[1] in SERVERS:
            for suffix, tree in trees():
                results[label + suffix] = product("idle.py", *args, *options, tree=tree)
    table = {
        server: {row["target"]: {key: row.get(key) for key in IDLE_FIELDS} for row in run["levels"]}
        for server, run in results.items()
    }
    log(
        f"{'idle':32} {'N':>6} {'open':>6} {'KB/conn':>8} {'conn/s':>8} {'/ node':>8} {'/ asgi-raw':>11}"
        f" {'CPU ms':>7}  (ratios of KB per connection; server CPU per connect)"
    )
    for level in levels:
        for server, rows in table.items():
            row = rows.get(level) or {}
            node = table["node-ws"].get(level) or {}
            bare = table["asgi-raw-daphne"].get(level) or {}
            log(
                f"{server:32} {level:>6} {row.get('open')!s:>6} {row.get('rss_per_conn_kb')!s:>8}"
                f" {row.get('connect_rate_per_s')!s:>8}"
                f" {ratio(row.get('rss_per_conn_kb'), node.get('rss_per_conn_kb')):>8}"
                f" {ratio(row.get('rss_per_conn_kb'), bare.get('rss_per_conn_kb')):>11}"
                f" {row.get('server_cpu_ms_per_connect')!s:>7}"
            )
    return table


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measures", nargs="+", choices=("fanout", "chat", "idle"), default=["fanout", "chat", "idle"])
    parser.add_argument(
        "--n", type=int, nargs="+", default=[100, 1000, 3000], help="fan-out subscribers (default %(default)s)"
    )
    parser.add_argument(
        "--levels", type=int, nargs="+", default=[1000, 5000, 10_000], help="idle connections (default %(default)s)"
    )
    parser.add_argument("--servers", nargs="+", choices=("daphne", "uvicorn"), default=["daphne", "uvicorn"])
    parser.add_argument("--baseline", type=Path, help="a checkout of an earlier commit, measured in the same run")
    args = parser.parse_args()
    global SERVERS, BASELINE
    SERVERS, BASELINE = tuple(args.servers), args.baseline
    if BASELINE and not (BASELINE / "bench" / "fanout.py").is_file():
        parser.error(f"--baseline {BASELINE} is not a Switchboard checkout")
    if not all(1 <= n <= 3000 for n in args.n) or not all(10 <= n <= 10_000 for n in args.levels):
        parser.error("bounds: 1 <= n <= 3000, 10 <= levels <= 10000")
    if not (WSBENCH_DIR / "loadgen.py").is_file():
        parser.error(f"the references are not at {WSBENCH_DIR} (set WSBENCH_DIR)")
    if not os.environ.get("REDIS_URL"):
        parser.error("REDIS_URL is required (make bench-compare starts a throwaway Redis)")
    on_load_core()
    results = {}
    if "fanout" in args.measures:
        results["fanout"] = fanout(args.n)
    if "chat" in args.measures:
        results["chat"] = chat()
    if "idle" in args.measures:
        results["idle"] = idle(args.levels)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
