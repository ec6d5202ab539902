"""Abuse limits: request budgets per principal or key, and failed-login lockouts.

The counters live in each worker process (a shared store comes with Redis in the
scale-out setup), so each worker enforces its share of the configured budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Budget:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int


class RateLimiter:
    """A token bucket per key: `per_minute` requests, refilled evenly over a minute."""

    def __init__(self, per_minute: int, share: int = 1, max_keys: int = 100_000) -> None:
        self.limit = per_minute
        self._capacity = max(1, math.ceil(per_minute / max(share, 1)))
        self._rate = self._capacity / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._max_keys = max_keys

    def take(self, key: str) -> Budget:
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key, (float(self._capacity), now))
        tokens = min(self._capacity, tokens + (now - stamp) * self._rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        if len(self._buckets) >= self._max_keys:
            self._buckets.clear()  # crude, but bounded memory under an key flood
        self._buckets[key] = (tokens, now)
        if allowed:
            reset = math.ceil((self._capacity - tokens) / self._rate)  # until full again
        else:
            reset = math.ceil((1.0 - tokens) / self._rate)  # until the next request fits
        return Budget(allowed, self.limit, int(tokens), max(reset, 1 if not allowed else 0))


class RequestLimiter(Protocol):
    limit: int

    def take(self, key: str) -> Budget: ...


class LoginLimits(Protocol):
    def blocked_for(self, key: str) -> int: ...

    def failed(self, key: str) -> None: ...

    def succeeded(self, key: str) -> None: ...


def login_key(address: str | None, username: str) -> str:
    """Failures count per account and key: one noisy client does not lock out a NAT."""
    return f"{address or ''}|{username}"


class FailedLogins:
    """Pauses logins for a key (see login_key) after too many failures within a window."""

    def __init__(self, limit: int, window_seconds: float = 300.0) -> None:
        self._limit = limit
        self._window = window_seconds
        self._failures: dict[str, list[float]] = {}

    def _recent(self, key: str, now: float) -> list[float]:
        recent = [t for t in self._failures.get(key, []) if now - t < self._window]
        if recent:
            self._failures[key] = recent
        else:
            self._failures.pop(key, None)
        return recent

    def blocked_for(self, key: str) -> int:
        """Seconds until this key may try again (0: it may now)."""
        if self._limit <= 0:
            return 0
        now = time.monotonic()
        recent = self._recent(key, now)
        if len(recent) < self._limit:
            return 0
        return max(1, math.ceil(recent[-self._limit] + self._window - now))

    def failed(self, key: str) -> None:
        if self._limit <= 0:
            return
        if len(self._failures) > 100_000:
            self._failures.clear()
        self._failures.setdefault(key, []).append(time.monotonic())

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
