"""
The Redis channel layer with batched group membership (``CHANNEL_LAYERS`` in config/settings.py).

A connection's session follows every group its user belongs to (chat: each conversation), and
the process hub joins a group in the layer for the first local member (realtime.hub).
channels_redis's ``group_add`` costs two round trips per group, one after the other: a user in
2,000 conversations took 1.6 s to get their ``welcome``, and the 8,000 round trips of their
connect and disconnect pushed other users' p99 from 19 ms to 920 ms (``make bench-floods``).

``group_add_many`` / ``group_discard_many`` do the same writes as ``group_add`` /
``group_discard`` (same keys, scores and expiry, through the layer's own shard choice), in one
pipeline per shard and per ``BATCH`` groups.
"""

import time
from collections import defaultdict
from collections.abc import Callable, Iterable

from channels_redis.core import RedisChannelLayer as BaseRedisChannelLayer

BATCH = 500


class RedisChannelLayer(BaseRedisChannelLayer):
    """channels_redis's ``RedisChannelLayer`` plus ``group_add_many`` and ``group_discard_many``."""

    async def _pipelined(self, groups: Iterable[str], channel: str, queue: Callable) -> None:
        # queue(pipe, group_key) adds one group's commands; one pipeline per shard and BATCH groups.
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        shards: dict[int, list[str]] = defaultdict(list)
        for group in groups:
            assert self.require_valid_group_name(group), "Group name not valid"
            shards[self.consistent_hash(group)].append(group)
        for index, shard_groups in shards.items():
            for start in range(0, len(shard_groups), BATCH):
                async with self.connection(index).pipeline(transaction=False) as pipe:
                    for group in shard_groups[start:start + BATCH]:
                        queue(pipe, self._group_key(group))
                    await pipe.execute()

    async def group_add_many(self, groups: Iterable[str], channel: str) -> None:
        """``group_add(group, channel)`` for each of ``groups``; raise the connection's errors."""

        def add(pipe, key):
            pipe.zadd(key, {channel: time.time()})
            pipe.expire(key, self.group_expiry)

        await self._pipelined(groups, channel, add)

    async def group_discard_many(self, groups: Iterable[str], channel: str) -> None:
        """``group_discard(group, channel)`` for each of ``groups``; raise the connection's errors."""
        await self._pipelined(groups, channel, lambda pipe, key: pipe.zrem(key, channel))
