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
``group_send_many`` sends a list of events with two Lua scripts per shard (read every group,
then write every channel), and ``receive_many`` pops every waiting message of a channel in one
command. The messages one call sends to a process channel (a plain name, read by
``receive_many``) travel as one bundle, one sorted-set entry serialized once, which
``receive_many`` unpacks: a batch of 50 chat messages to one process had cost 50 serializations,
50 script calls and 50 reads back, a third of the event loop's time at 1,000 messages/s (py-spy
``--gil``, ``bench/chat_rate.py``). Both keep ``group_send``'s rules (group and message expiry,
channel capacity, counted in entries: a bundle is one) and its storage, so they mix with the
stock methods; a channel of the stock form (``name!client``) gets one entry per message.

On one Redis (one shard: every deployment this project documents), ``group_send_many`` takes one
script, not two: it reads the groups and writes each process channel its bundle in the same call,
composing the bundle from the messages serialized once each (msgpack). At 250 chat messages a
second every message was a call of its own, and the second round trip was about a tenth of the
event loop's time (``make bench-chat``, py-spy ``--gil``). Sharded layers, another serializer,
encryption or per-channel capacities take the two scripts.

They read channels_redis's private storage layout and helpers (channels_redis/core.py, 4.3:
``_group_key``, ``_map_channel_keys_to_connection``, ``consistent_hash``, its message encoding):
``TESTED`` is the range they were written for, checked by ``realtime.E003``.
"""

import functools
import hashlib
import logging
import os
import time
from collections import defaultdict
from collections.abc import Iterable

import msgpack
from channels_redis.core import RedisChannelLayer as BaseRedisChannelLayer
from channels_redis.serializers import MsgPackSerializer
from redis.exceptions import NoScriptError, ResponseError

from realtime.versions import Tested

logger = logging.getLogger(__name__)

BATCH = 500

TESTED = (Tested("channels-redis", ">=4.3,<4.4", "4.3.0"),)

# A bundle: the messages of one group_send_many call to one process channel, in order, as one
# sorted-set entry (receive_many unpacks it). At most BUNDLE_MAX messages per entry.
BUNDLE_TYPE = "realtime.bundle"
BUNDLE_MAX = 100

# group_send's first half for many groups: drop the members past the group expiry, read the rest.
# KEYS: group keys; ARGV: the oldest score kept. Returns each group's channels.
_READ_GROUPS_SCRIPT = """
local channels = {}
for i=1,#KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, ARGV[1])
    channels[i] = redis.call('ZRANGE', KEYS[i], 0, -1)
end
return channels
"""

# group_send's second half for many entries (channels_redis's own script, plus the expiry of old
# messages it runs beforehand): add each entry to its channel under the channel's capacity.
# KEYS: channel keys (a key may repeat); ARGV: per entry its payload, the channel's capacity, the
# messages it carries and its score, then the message expiry (s) and the oldest score kept.
# Returns the messages refused over capacity.
_SEND_SCRIPT = """
local n = #KEYS
local expiry, oldest = ARGV[4 * n + 1], ARGV[4 * n + 2]
local refused = 0
for i=1,n do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, oldest)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[n + i]) then
        redis.call('ZADD', KEYS[i], ARGV[3 * n + i], ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        refused = refused + tonumber(ARGV[2 * n + i])
    end
end
return refused
"""

# group_send_many on one shard: both scripts above in one call. KEYS: the group keys. ARGV: the
# oldest group score kept, the key prefix, the capacity, the message expiry (s), the oldest message
# score kept, now (the first score), the random prefix (its last 4 bytes are replaced by the
# entry's position: two entries of one key never share a member), the bundle's head (msgpack of
# {"type": BUNDLE_TYPE, "messages": []} without the empty array), BUNDLE_MAX, then per message its
# group's index in KEYS and its msgpack bytes. A process channel's messages go out as one bundle
# entry (per BUNDLE_MAX), in call order; a stock channel (with "!") is left to the caller. The
# channel keys it writes are found in the groups, so they are not in KEYS: a single Redis allows
# that for scripts without flags (Redis Cluster would not, and is not what this layer talks to).
# Returns {refused messages, {message index, stock channel, ...}}.
_SEND_TO_GROUPS_SCRIPT = """
local oldest_member, prefix, capacity = ARGV[1], ARGV[2], tonumber(ARGV[3])
local expiry, oldest, now = ARGV[4], ARGV[5], tonumber(ARGV[6])
local random, head, bundle_max = ARGV[7], ARGV[8], tonumber(ARGV[9])
local members = {}
for i=1,#KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, oldest_member)
    members[i] = redis.call('ZRANGE', KEYS[i], 0, -1)
end
local channels, bundles, stock = {}, {}, {}
for m=0,(#ARGV - 9) / 2 - 1 do
    local group = tonumber(ARGV[10 + 2 * m])
    for _, channel in ipairs(members[group]) do
        if string.find(channel, '!', 1, true) then
            stock[#stock + 1] = m
            stock[#stock + 1] = channel
        else
            if bundles[channel] == nil then
                bundles[channel] = {}
                channels[#channels + 1] = channel
            end
            local bundle = bundles[channel]
            bundle[#bundle + 1] = ARGV[11 + 2 * m]
        end
    end
end
local refused, position = 0, 0
local random_head = string.sub(random, 1, #random - 4)
for _, channel in ipairs(channels) do
    local key, messages = prefix .. channel, bundles[channel]
    for start=1,#messages,bundle_max do
        local stop = math.min(start + bundle_max - 1, #messages)
        local count = stop - start + 1
        local body
        if count == 1 then
            body = messages[start]
        else
            local array = count < 16 and string.char(0x90 + count)
                or string.char(0xdc, math.floor(count / 256), count % 256)
            body = head .. array .. table.concat(messages, '', start, stop)
        end
        redis.call('ZREMRANGEBYSCORE', key, 0, oldest)
        if redis.call('ZCOUNT', key, '-inf', '+inf') < capacity then
            local member = random_head .. struct.pack('>I4', position) .. body
            redis.call('ZADD', key, string.format('%.6f', now + position * 1e-6), member)
            redis.call('EXPIRE', key, expiry)
        else
            refused = refused + count
        end
        position = position + 1
    end
end
return {refused, stock}
"""

# The start of every bundle's msgpack: a two-entry map, its type, then the "messages" key.
_BUNDLE_HEAD = msgpack.packb({"type": BUNDLE_TYPE, "messages": []})[:-1]


async def _run_script(connection, script: str, keys: list, args: list):
    # EVALSHA, loading the script on the first call to each server (EVAL sends its whole text).
    sha = _SCRIPT_SHAS.get(script)
    if sha is None:
        sha = _SCRIPT_SHAS[script] = hashlib.sha1(script.encode()).hexdigest()
    try:
        return await connection.evalsha(sha, len(keys), *keys, *args)
    except NoScriptError:
        return await connection.eval(script, len(keys), *keys, *args)


_SCRIPT_SHAS: dict[str, str] = {}


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

    # receive_many's blocking pop of many entries (BZMPOP); False once Redis said it has none.
    _blocking_pop_many = True

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

        On one shard, one script reads every group and writes the process channels' entries;
        otherwise one script per shard reads every group, one per shard writes every channel's
        entries. A process channel gets its messages as bundles (module doc), a stock channel one
        entry each.
        Entries to one channel get strictly increasing scores in ``sends`` order: in a sorted
        set equal scores sort by content, which would reorder them. Raise the connection's errors.
        """
        if self._one_script:
            return await self._group_send_one_script(sends)
        now = time.time()
        members: dict[str, list[str]] = {}
        by_shard: dict[int, list[str]] = defaultdict(list)
        for group, _ in sends:
            if group not in members:
                assert self.require_valid_group_name(group), "Group name not valid"
                members[group] = []
                by_shard[self.consistent_hash(group)].append(group)
        for index, groups in by_shard.items():
            replies = await _run_script(
                self.connection(index),
                _READ_GROUPS_SCRIPT,
                [self._group_key(group) for group in groups],
                [int(now) - self.group_expiry],
            )
            for group, channels in zip(groups, replies, strict=True):
                members[group] = [channel.decode("utf8") for channel in channels]

        # Per shard, the entries in order: (channel key, payload, capacity, messages carried).
        entries: dict[int, list[tuple[str, bytes, int, int]]] = defaultdict(list)
        bundles: dict[str, list[dict]] = {}  # process channel -> its messages, in order
        for group, message in sends:
            stock = []
            for channel in members[group]:
                if "!" in channel:
                    stock.append(channel)
                else:
                    bundles.setdefault(channel, []).append(message)
            if stock:
                self._add_stock_entries(entries, stock, message)
        for channel, messages in bundles.items():
            for start in range(0, len(messages), BUNDLE_MAX):
                part = messages[start : start + BUNDLE_MAX]
                payload = self.serialize(part[0] if len(part) == 1 else {"type": BUNDLE_TYPE, "messages": part})
                entries[self.consistent_hash(channel)].append(
                    (self.prefix + channel, payload, self.get_capacity(channel), len(part))
                )
        return self._counted(await self._send_entries(entries, now), len(sends))

    def _add_stock_entries(
        self, entries: dict[int, list[tuple[str, bytes, int, int]]], channels: list[str], message: dict
    ) -> None:
        # Channels of the stock form (a consumer's own, with "!"): one entry per message each, as
        # channels_redis's group_send writes them, added to their shards' ``entries``.
        to_connection, key_to_message, key_to_capacity = self._map_channel_keys_to_connection(channels, message)
        for index, keys in to_connection.items():
            entries[index].extend((key, key_to_message[key], key_to_capacity[key], 1) for key in keys)

    async def _send_entries(self, entries: dict[int, list[tuple[str, bytes, int, int]]], now: float) -> int:
        # Per shard, the entries (channel key, payload, capacity, messages carried) with _SEND_SCRIPT;
        # returns the messages refused over capacity.
        refused = 0
        for index, batch in entries.items():
            keys, payloads, capacities, counts = zip(*batch, strict=True)
            scores = [now + position * 1e-6 for position in range(len(batch))]
            refused += await _run_script(
                self.connection(index),
                _SEND_SCRIPT,
                list(keys),
                [*payloads, *capacities, *counts, *scores, self.expiry, int(now) - int(self.expiry)],
            )
        return refused

    @staticmethod
    def _counted(refused: int, sends: int) -> int:
        if refused:
            logger.info("%d channel deliveries over capacity in %d group sends", refused, sends)
        return refused

    @functools.cached_property
    def _one_script(self) -> bool:
        """Whether ``group_send_many`` can take ``_SEND_TO_GROUPS_SCRIPT`` (module doc)."""
        serializer = self._serializer
        return (
            self.ring_size == 1
            and not self.channel_capacity
            and isinstance(serializer, MsgPackSerializer)
            and serializer.crypter is None
            and serializer.random_prefix_length >= 4
        )

    async def _group_send_one_script(self, sends: list[tuple[str, dict]]) -> int:
        """``group_send_many`` on one shard, in one script (``_SEND_TO_GROUPS_SCRIPT``)."""
        now = time.time()
        groups: dict[str, int] = {}
        per_message = []
        for group, message in sends:
            if group not in groups:
                assert self.require_valid_group_name(group), "Group name not valid"
                groups[group] = len(groups) + 1  # Lua counts from 1
            per_message += (groups[group], msgpack.packb(message))
        refused, stock = await _run_script(
            self.connection(0),
            _SEND_TO_GROUPS_SCRIPT,
            [self._group_key(group) for group in groups],
            [
                int(now) - self.group_expiry,
                self.prefix,
                self.capacity,
                self.expiry,
                int(now) - int(self.expiry),
                repr(now),
                os.urandom(self._serializer.random_prefix_length),
                _BUNDLE_HEAD,
                BUNDLE_MAX,
                *per_message,
            ],
        )
        if stock:  # the script left these to us: pairs of (message index, stock channel)
            entries: dict[int, list[tuple[str, bytes, int, int]]] = defaultdict(list)
            for position in range(0, len(stock), 2):
                self._add_stock_entries(entries, [stock[position + 1].decode("utf8")], sends[int(stock[position])][1])
            refused += await self._send_entries(entries, now)
        return self._counted(int(refused), len(sends))

    async def receive_many(self, channel: str, limit: int) -> list[dict]:
        """
        Wait for messages on ``channel`` (a plain name, no ``!``: one reader, this process's hub)
        and return those of up to ``limit`` entries, oldest first, bundles unpacked.

        Unlike ``receive`` it keeps no backup copy: a read cancelled between Redis's pop and its
        reply loses what was popped. Only a closing process cancels its hub's read, and what it
        would have delivered goes to connections that are closing too (clients resume).
        """
        assert self.require_valid_channel_name(channel, receive=True) and "!" not in channel
        key = self.prefix + channel
        connection = self.connection(self.consistent_hash(channel))
        while True:
            if self._blocking_pop_many:
                # One command per wake-up (Redis 7's BZMPOP): a round trip costs the event loop
                # about 0.2 ms here, and ZPOPMIN then BZPOPMIN took two for every quiet moment.
                try:
                    result = await connection.bzmpop(self.brpop_timeout, 1, [key], min=True, count=limit)
                except ResponseError as exc:
                    if "unknown command" not in str(exc).lower():
                        raise
                    self._blocking_pop_many = False  # Redis before 7
                    continue
                if result is not None:
                    return self._unpacked(member for member, _ in result[1])
                continue
            popped = await connection.zpopmin(key, limit)
            if popped:
                return self._unpacked(member for member, _ in popped)
            result = await connection.bzpopmin(key, timeout=self.brpop_timeout)
            if result is not None:
                return self._unpacked([result[1]])

    def _unpacked(self, members: Iterable[bytes]) -> list[dict]:
        messages = []
        for member in members:
            message = self._received(member)
            if message.get("type") == BUNDLE_TYPE:
                messages.extend(message["messages"])
            else:
                messages.append(message)
        return messages

    def _received(self, member: bytes) -> dict:
        message = self.deserialize(member)
        message.pop("__asgi_channel__", None)
        return message
