"""``ServerProcess.start`` while the channel layer is away: refused at once, tried again later."""

import asyncio
import time

import pytest

from realtime.delivery.process import ServerProcess


@pytest.fixture
def process(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REALTIME = {**settings.REALTIME, "REDIS_URL": "", "HUB_RETRY_S": 0.2}
    return ServerProcess()


async def test_handshakes_during_and_just_after_a_failed_start_fail_at_once_then_the_start_is_tried_again(
    process, monkeypatch
):
    attempts = []
    layer_back = asyncio.Event()
    real_start = process.hub.start

    async def hub_start():
        attempts.append(time.monotonic())
        if layer_back.is_set():
            await real_start()
            return
        await asyncio.sleep(0.3)  # a connect that times out (Redis blackholed)
        raise ConnectionError("Redis is away")

    monkeypatch.setattr(process.hub, "start", hub_start)
    # Three handshakes at once: one attempt, all three refused when it fails.
    results = await asyncio.gather(*(process.start() for _ in range(3)), return_exceptions=True)
    assert [type(result) for result in results] == [ConnectionError] * 3
    assert len(attempts) == 1
    # Right after the failure a handshake is refused without a new attempt to wait on.
    with pytest.raises(ConnectionError):
        await process.start()
    assert len(attempts) == 1

    layer_back.set()
    deadline = time.monotonic() + 10
    while True:
        try:
            await process.start()
            break
        except ConnectionError:
            assert time.monotonic() < deadline, "the start was never tried again"
            await asyncio.sleep(0.05)
    assert len(attempts) == 2
    try:
        await process.start()  # started: later calls return at once
        assert len(attempts) == 2
    finally:
        await process.close()
