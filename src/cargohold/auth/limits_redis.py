"""Abuse limits shared by every replica, in Redis.

Same interface as the in-process versions in limits.py. If Redis cannot be reached the
limits fail open (and say so in the log): a rate limiter must not take the registry down.
"""

from __future__ import annotations

import logging
import math
import time

import redis

from cargohold.auth.limits import Budget

log = logging.getLogger(__name__)


class RedisRateLimiter:
    """A fixed one-minute window per key, counted atomically across replicas."""

    def __init__(self, client: redis.Redis, per_minute: int, prefix: str = "cargohold") -> None:
        self.limit = per_minute
        self._client = client
        self._prefix = prefix

    def take(self, key: str) -> Budget:
        now = time.time()
        window = int(now // 60)
        reset = max(1, math.ceil((window + 1) * 60 - now))
        name = f"{self._prefix}:rate:{key}:{window}"
        try:
            pipe = self._client.pipeline()
            pipe.incr(name)
            pipe.expire(name, 120)
            count = int(pipe.execute()[0])
        except redis.RedisError as exc:
            log.warning("rate limit not applied, Redis unavailable: %s", exc)
            return Budget(True, self.limit, self.limit, reset)
        allowed = count <= self.limit
        return Budget(allowed, self.limit, max(self.limit - count, 0), reset)


class RedisFailedLogins:
    """Failed-login counts per key, expiring with the window, shared by every replica."""

    def __init__(
        self,
        client: redis.Redis,
        limit: int,
        window_seconds: int = 300,
        prefix: str = "cargohold",
    ) -> None:
        self._client = client
        self._limit = limit
        self._window = window_seconds
        self._prefix = prefix

    def _name(self, key: str) -> str:
        return f"{self._prefix}:failed-logins:{key}"

    def blocked_for(self, key: str) -> int:
        if self._limit <= 0:
            return 0
        try:
            pipe = self._client.pipeline()
            pipe.get(self._name(key))
            pipe.ttl(self._name(key))
            count, ttl = pipe.execute()
        except redis.RedisError as exc:
            log.warning("failed-login check skipped, Redis unavailable: %s", exc)
            return 0
        if count is None or int(count) < self._limit:
            return 0
        return max(int(ttl), 1)

    def failed(self, key: str) -> None:
        if self._limit <= 0:
            return
        try:
            pipe = self._client.pipeline()
            pipe.incr(self._name(key))
            pipe.expire(self._name(key), self._window, nx=True)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("failed login not counted, Redis unavailable: %s", exc)

    def succeeded(self, key: str) -> None:
        try:
            self._client.delete(self._name(key))
        except redis.RedisError as exc:
            log.warning("failed-login count not cleared, Redis unavailable: %s", exc)
