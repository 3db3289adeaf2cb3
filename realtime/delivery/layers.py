"""
The Redis channel layer with batched group membership (``CHANNEL_LAYERS`` in config/settings.py).

A connection's session follows every group its user belongs to (chat: each conversation), and
the process hub joins a group in the layer for the first local member (realtime.delivery.hub).
channels_redis's ``group_add`` costs two round trips per group, one after the other: a user in
2,000 conversations took 1.6 s to get their ``welcome``, and the 8,000 round trips of their
connect and disconnect pushed other users' p99 from 19 ms to 920 ms (``make bench-floods``).

``group_add_many`` / ``group_discard_many`` do the same writes as ``group_add`` /
``group_discard`` (same keys, scores and expiry, through the layer's own shard choice), in one
Lua script per shard and per ``BATCH`` groups: a pipeline of the same commands cost redis-py
34 us of the event loop per command, so re-adding a process's groups stalled it.

The same holds for events. ``group_send`` costs four round trips (expire the group, read it,
expire the channels' messages, add the message) and a ``receive`` four more (restore the backup,
blocking pop, back the message up, drop the backup): eight awaited Redis commands per chat
message, half the event loop's time at 100 messages/s (py-spy, ``make bench-chat``).
``group_send_many`` sends a list of events in two pipelines per shard, and ``receive_many``
pops every waiting message of a channel in one command. Both keep ``group_send``'s rules
(group and message expiry, channel capacity) and its storage, so they mix with the stock methods.

They read channels_redis's private storage layout and helpers (channels_redis/core.py, 4.3:
``_group_key``, ``_map_channel_keys_to_connection``, ``consistent_hash``, its message encoding):
``TESTED`` is the range they were written for, checked by ``realtime.E003``.
"""

import logging
import time
from collections import defaultdict
from collections.abc import Iterable

from channels_redis.core import RedisChannelLayer as BaseRedisChannelLayer

from realtime.versions import Tested

logger = logging.getLogger(__name__)

BATCH = 500

TESTED = (Tested("channels-redis", ">=4.3,<4.4", "4.3.0"),)

# channels_redis's own group_send script: add the message to each channel under its capacity.
# KEYS: channel keys; ARGV: one message per key, one capacity per key, then the score and expiry.
_SEND_SCRIPT = """
local over_capacity = 0
local current_time = ARGV[#ARGV - 1]
local expiry = ARGV[#ARGV]
for i=1,#KEYS do
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
        redis.call('ZADD', KEYS[i], current_time, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
"""


# group_add's two commands for each group key: ARGV channel, score (epoch s), expiry (s).
_ADD_SCRIPT = """
for i=1,#KEYS do
    redis.call('ZADD', KEYS[i], ARGV[2], ARGV[1])
    redis.call('EXPIRE', KEYS[i], ARGV[3])
end
"""

# group_discard's command for each group key: ARGV channel.
_DISCARD_SCRIPT = """
for i=1,#KEYS do
    redis.call('ZREM', KEYS[i], ARGV[1])
end
"""


class RedisChannelLayer(BaseRedisChannelLayer):
    """channels_redis's ``RedisChannelLayer`` plus ``group_add_many`` and ``group_discard_many``."""

    async def _per_group(self, script: str, groups: Iterable[str], channel: str, *args) -> None:
        # One script per shard and BATCH groups: KEYS the group keys, ARGV channel and args.
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        shards: dict[int, list[str]] = defaultdict(list)
        for group in groups:
            assert self.require_valid_group_name(group), "Group name not valid"
            shards[self.consistent_hash(group)].append(self._group_key(group))
        for index, keys in shards.items():
            for start in range(0, len(keys), BATCH):
                batch = keys[start : start + BATCH]
                await self.connection(index).eval(script, len(batch), *batch, channel, *args)

    async def group_add_many(self, groups: Iterable[str], channel: str) -> None:
        """``group_add(group, channel)`` for each of ``groups``; raise the connection's errors."""
        await self._per_group(_ADD_SCRIPT, groups, channel, time.time(), self.group_expiry)

    async def group_discard_many(self, groups: Iterable[str], channel: str) -> None:
        """``group_discard(group, channel)`` for each of ``groups``; raise the connection's errors."""
        await self._per_group(_DISCARD_SCRIPT, groups, channel)

    async def is_member(self, group: str, channel: str) -> bool:
        """Whether ``channel`` is in ``group`` in Redis (False after Redis lost it: a restart, expiry)."""
        key = self._group_key(group)
        return await self.connection(self.consistent_hash(group)).zscore(key, channel) is not None

    async def group_send_many(self, sends: list[tuple[str, dict]]) -> int:
        """
        ``group_send(group, message)`` for each ``(group, message)`` of ``sends``, in order, and
        return how many channel deliveries were refused over capacity (channels_redis logs and
        drops those; the caller counts them).

        One pipeline per shard reads every group, one per shard writes every message. Messages
        to one channel get strictly increasing scores in ``sends`` order: in a sorted set equal
        scores sort by content, which would reorder them. Raise the connection's errors.
        """
        now = time.time()
        members: dict[str, list[str]] = {}
        by_shard: dict[int, list[str]] = defaultdict(list)
        for group, _ in sends:
            if group not in members:
                assert self.require_valid_group_name(group), "Group name not valid"
                members[group] = []
                by_shard[self.consistent_hash(group)].append(group)
        for index, groups in by_shard.items():
            async with self.connection(index).pipeline(transaction=False) as pipe:
                for group in groups:
                    key = self._group_key(group)
                    pipe.zremrangebyscore(key, min=0, max=int(now) - self.group_expiry)
                    pipe.zrange(key, 0, -1)
                replies = await pipe.execute()
            for group, channels in zip(groups, replies[1::2], strict=True):
                members[group] = [channel.decode("utf8") for channel in channels]

        writes: dict[int, list[tuple[list, list]]] = defaultdict(list)
        for group, message in sends:
            to_connection, key_to_message, key_to_capacity = self._map_channel_keys_to_connection(
                members[group], message
            )
            for index, keys in to_connection.items():
                writes[index].append((keys, [key_to_message[k] for k in keys] + [key_to_capacity[k] for k in keys]))
        refused = 0
        for index, batch in writes.items():
            async with self.connection(index).pipeline(transaction=False) as pipe:
                # Expire each channel's old messages once, then add the new ones in order.
                for key in dict.fromkeys(key for keys, _ in batch for key in keys):
                    pipe.zremrangebyscore(key, min=0, max=int(now) - int(self.expiry))
                expiring = len(pipe)
                for position, (keys, args) in enumerate(batch):
                    pipe.eval(_SEND_SCRIPT, len(keys), *keys, *args, now + position * 1e-6, self.expiry)
                replies = await pipe.execute()
            refused += sum(replies[expiring:])
        if refused:
            logger.info("%d channel deliveries over capacity in %d group sends", refused, len(sends))
        return refused

    async def receive_many(self, channel: str, limit: int) -> list[dict]:
        """
        Wait for messages on ``channel`` (a plain name, no ``!``: one reader, this process's hub)
        and return up to ``limit`` of them, oldest first.

        Unlike ``receive`` it keeps no backup copy: a read cancelled between Redis's pop and its
        reply loses what was popped. Only a closing process cancels its hub's read, and what it
        would have delivered goes to connections that are closing too (clients resume).
        """
        assert self.require_valid_channel_name(channel, receive=True) and "!" not in channel
        key = self.prefix + channel
        connection = self.connection(self.consistent_hash(channel))
        while True:
            popped = await connection.zpopmin(key, limit)
            if popped:
                return [self._received(member) for member, _ in popped]
            result = await connection.bzpopmin(key, timeout=self.brpop_timeout)
            if result is not None:
                return [self._received(result[1])]

    def _received(self, member: bytes) -> dict:
        message = self.deserialize(member)
        message.pop("__asgi_channel__", None)
        return message
