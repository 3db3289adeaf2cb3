"""The apps' periodic jobs run in every server process (realtime/periodic.py, realtime/delivery/process.py)."""

import asyncio
import threading
import time

import pytest

from realtime import periodic
from realtime.delivery.process import ServerProcess


@pytest.fixture
def job_runs():
    runs = []
    periodic.register("test.job", lambda: runs.append(threading.current_thread().name), interval_s=lambda: 0.05)
    yield runs
    periodic._jobs.pop("test.job")


async def test_a_registered_job_runs_repeatedly_in_the_database_thread_until_the_process_closes(
    settings, job_runs, transactional_db
):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REALTIME = {**settings.REALTIME, "REDIS_URL": ""}
    process = ServerProcess()
    await process.start()
    try:
        deadline = time.monotonic() + 10
        while len(job_runs) < 3:
            assert time.monotonic() < deadline, f"the job ran {len(job_runs)} times"
            await asyncio.sleep(0.02)
        assert threading.main_thread().name not in job_runs  # never on the event loop's thread
    finally:
        await process.close()
    ran = len(job_runs)
    await asyncio.sleep(0.2)  # four intervals: a job still scheduled would have run again
    assert len(job_runs) == ran
