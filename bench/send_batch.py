"""
CPU per ``chat.send`` in the batch thread, by batch size (issue 7): the ``chat.send`` batch
handler (validation, authorisation, insert, updates, commit; publishing collected, not sent) run
in this process on a throwaway SQLite database in WAL mode with synchronous=FULL, as the server
runs it (realtime/delivery/group_commit.py). 200 users in 20 group conversations of 10, 64-character
messages, each with an idempotency key.

Prints, per ``--sizes`` batch size, the process CPU time per message (median of ``--repeats``
runs of ``--batches`` batches), after a warm-up and with the survivors frozen as the server's
``GC_FREEZE`` does.

Usage: ``.venv/bin/python bench/send_batch.py [--sizes 1 5 20 50]``, pinned to CPU 1 like the other
benchmarks' load. Local files only, bounded.
"""

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.fanout import production_env  # noqa: E402
from bench.progress import prepare  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 5, 20, 50], help="messages per batch")
    parser.add_argument("--batches", type=int, default=100, help="batches per run (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per size (default %(default)s)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="switchboard-send-batch-") as workdir:
        prepare(production_env("", f"sqlite:///{workdir}/send.sqlite3"))  # no Redis: publishing is only collected
        from django.contrib.auth import get_user_model

        from chat import handlers
        from chat.models import Conversation, Membership
        from realtime.context import HandlerContext
        from realtime.delivery.outbox import collecting_publishes

        user_model = get_user_model()
        users = user_model.objects.bulk_create([user_model(username=f"sender{i}") for i in range(200)])
        rooms = Conversation.objects.bulk_create(
            [Conversation(kind=Conversation.Kind.GROUP, title=f"room {r}") for r in range(20)]
        )
        Membership.objects.bulk_create([Membership(user=u, conversation=rooms[i // 10]) for i, u in enumerate(users)])
        sent = 0

        def batch(size: int) -> None:
            nonlocal sent
            calls = []
            for _ in range(size):
                sent += 1
                user = users[sent % len(users)]
                calls.append(
                    (
                        HandlerContext(user=user, connection_id="bench"),
                        {
                            "conversation_id": rooms[(sent % len(users)) // 10].pk,
                            "content": "x" * 64,
                            "client_msg_id": f"bench-{sent}",
                        },
                    )
                )
            with collecting_publishes():
                outcomes = handlers.send(calls)
            assert not any(isinstance(outcome, Exception) for outcome in outcomes), outcomes

        for size in args.sizes:
            for _ in range(10):
                batch(size)
            gc.collect()
            gc.freeze()
            runs = []
            for _ in range(args.repeats):
                started = time.process_time()
                for _ in range(args.batches):
                    batch(size)
                runs.append((time.process_time() - started) / (args.batches * size))
            gc.unfreeze()
            print(
                f"batch of {size:3d}: {statistics.median(runs) * 1000:.3f} ms CPU per message "
                f"(runs: {', '.join(f'{r * 1000:.3f}' for r in runs)})",
                flush=True,
            )


if __name__ == "__main__":
    main()
