"""
Before and after, alternated: ``bench/fanout.py`` run in this checkout and in a baseline checkout
in turn, ``--runs`` times each, for every ``--topic``; medians per side.

One run of each side (``bench/compare.py --baseline``) is at the mercy of whatever else the
machine did meanwhile: at N=3,000 two runs of one tree differed by 10x in last-delivery p99. Taking
turns spreads such noise over both sides, and the median of a few runs sets one bad run aside.
``cpu_us_per_delivery`` is the figure to compare first: it moves least between runs. It is
computed here from what every version of fanout.py reports (server CPU % over the send span and
the drain, per delivery), so that an older baseline is measured the same way.

Usage: ``git worktree add /tmp/before <rev>``, then
``BENCH_ARGS="--baseline /tmp/before --n 3000 --runs 4" make bench-alternate``. Prints each run
and the medians on stderr, one JSON object on stdout. Loopback only, bounded like fanout.py
(about 45 s per run at N=3,000).
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
FIELDS = ("cpu_us_per_delivery", "last_p50_ms", "last_p99_ms", "p99_ms", "lost_deliveries")


def run(tree: Path, n: int, topic: str) -> dict:
    """One ``fanout.py`` run in checkout ``tree`` (its own Python environment); its JSON result."""
    out = subprocess.run(
        [str(tree / ".venv" / "bin" / "python"), "bench/fanout.py", "--n", str(n), "--topic", topic],
        cwd=tree,
        check=True,
        stdout=subprocess.PIPE,
        timeout=600,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    cpu_s = result["server_cpu_pct"] / 100 * (result["send_span_s"] + result["drain_s"])
    result["cpu_us_per_delivery"] = round(1e6 * cpu_s / max(result["deliveries"], 1), 2)
    return result


def medians_of(results: dict[str, dict[str, list[dict]]], fields: tuple[str, ...]) -> dict:
    """``{topic: {side: [run, ...]}}`` -> ``{topic: {side: {field: median}}}``, over the runs that report each field."""
    return {
        topic: {
            side: {
                field: statistics.median(r[field] for r in runs if r.get(field) is not None)
                for field in fields
                if any(r.get(field) is not None for r in runs)
            }
            for side, runs in by_side.items()
        }
        for topic, by_side in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the earlier commit")
    parser.add_argument("--n", type=int, default=3000, help="subscribers (default %(default)s)")
    parser.add_argument("--runs", type=int, default=4, help="runs per side and topic (default %(default)s)")
    parser.add_argument("--topics", nargs="+", choices=("chat", "task"), default=["chat", "task"])
    args = parser.parse_args()
    sides = (("current", BASE_DIR), ("baseline", args.baseline.resolve()))
    results: dict[str, dict[str, list[dict]]] = {topic: {side: [] for side, _ in sides} for topic in args.topics}
    for i in range(args.runs):
        for topic in args.topics:
            for side, tree in sides:
                result = run(tree, args.n, topic)
                results[topic][side].append(result)
                figures = ", ".join(f"{field} {result.get(field)}" for field in FIELDS)
                print(f"run {i + 1} {topic} {side}: {figures}", file=sys.stderr, flush=True)
    medians = medians_of(results, FIELDS)
    for topic, by_side in medians.items():
        for side, figures in by_side.items():
            print(f"median {topic} {side} (n={args.n}, {args.runs} runs): {figures}", file=sys.stderr)
    print(json.dumps({"n": args.n, "runs": args.runs, "medians": medians, "results": results}))


if __name__ == "__main__":
    main()
