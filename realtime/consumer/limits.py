"""
Per-connection frame rate limits: a token bucket over every frame, stricter buckets for some
frame types (``REALTIME["TYPE_RATE_LIMITS"]``), and the "sustained abuse" rule that closes
with 4429. Pure, clock-injected code: the consumer asks, this module answers.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from realtime.conf import realtime_settings


class TokenBucket:
    """
    ``capacity`` tokens, refilled at ``per_min`` tokens per minute; each frame takes one.

    ``take()`` returns 0 when a token was taken, else the milliseconds until one is available.
    """

    __slots__ = ("capacity", "clock", "rate_per_s", "tokens", "updated")

    def __init__(self, per_min: float, capacity: float, clock: Callable[[], float] = time.monotonic):
        self.rate_per_s = per_min / 60.0
        self.capacity = capacity
        self.tokens = float(capacity)
        self.clock = clock
        self.updated = clock()

    def take(self) -> int:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0
        return max(1, int((1 - self.tokens) / self.rate_per_s * 1000))


@dataclass
class Verdict:
    """``retry_after_ms`` > 0 when the frame is refused; ``abusive`` when the connection must close (4429)."""

    retry_after_ms: int = 0
    abusive: bool = False
    scope: str = "connection"


@dataclass(slots=True)
class FrameRateLimiter:
    """
    Rate limits of one connection, from ``REALTIME`` settings: the general bucket made at connect
    time, a frame type's own bucket at the first frame of that type (it starts full, as one made
    at connect would still be: nothing took from it), so an idle connection holds one bucket.
    """

    clock: Callable[[], float] = time.monotonic
    general: TokenBucket = field(init=False)
    by_type: dict[str, TokenBucket] | None = field(init=False, default=None)
    refused: list[float] = field(init=False, default_factory=list)

    def __post_init__(self):
        self.general = TokenBucket(realtime_settings.RATE_PER_MIN, realtime_settings.RATE_BURST, self.clock)

    def check_frame(self) -> Verdict:
        """Take a token for any incoming frame (before it is even parsed)."""
        return self._verdict(self.general.take(), "connection")

    def check_type(self, frame_type: str) -> Verdict:
        """Take a token from ``frame_type``'s own bucket, if it has one."""
        bucket = self.by_type.get(frame_type) if self.by_type else None
        if bucket is None:
            limit = realtime_settings.TYPE_RATE_LIMITS.get(frame_type)
            if limit is None:
                return Verdict()
            bucket = TokenBucket(limit["per_min"], limit["burst"], self.clock)
            if self.by_type is None:
                self.by_type = {}
            self.by_type[frame_type] = bucket
        return self._verdict(bucket.take(), frame_type)

    def _verdict(self, retry_after_ms: int, scope: str) -> Verdict:
        if not retry_after_ms:
            return Verdict()
        now = self.clock()
        window = realtime_settings.RATE_ABUSE_WINDOW_S
        self.refused = [t for t in self.refused if now - t < window]
        self.refused.append(now)
        return Verdict(retry_after_ms, len(self.refused) >= realtime_settings.RATE_ABUSE_FRAMES, scope)
