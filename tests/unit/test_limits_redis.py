"""Shared limits on the Redis server of this machine (127.0.0.1:6379)."""

from __future__ import annotations

import uuid

from cargohold.auth.limits_redis import RedisFailedLogins, RedisRateLimiter
from cargohold.shared_redis import redis_client

REDIS_URL = "redis://127.0.0.1:6379/0"


def test_budget_is_shared_by_every_limiter_on_the_same_redis() -> None:
    prefix = f"test-{uuid.uuid4().hex}"
    one = RedisRateLimiter(redis_client(REDIS_URL), 3, prefix)
    two = RedisRateLimiter(redis_client(REDIS_URL), 3, prefix)  # another replica
    results = [one.take("alice"), two.take("alice"), one.take("alice"), two.take("alice")]
    assert [b.allowed for b in results] == [True, True, True, False]
    assert [b.remaining for b in results] == [2, 1, 0, 0]
    assert 1 <= results[3].reset_seconds <= 60
    assert one.take("bob").allowed


def test_failed_logins_are_shared_and_cleared() -> None:
    prefix = f"test-{uuid.uuid4().hex}"
    one = RedisFailedLogins(redis_client(REDIS_URL), 2, 60, prefix)
    two = RedisFailedLogins(redis_client(REDIS_URL), 2, 60, prefix)
    one.failed("10.0.0.1|alice")
    assert two.blocked_for("10.0.0.1|alice") == 0
    two.failed("10.0.0.1|alice")
    assert 0 < one.blocked_for("10.0.0.1|alice") <= 60
    one.succeeded("10.0.0.1|alice")
    assert two.blocked_for("10.0.0.1|alice") == 0


def test_unreachable_redis_fails_open() -> None:
    dead = redis_client("redis://127.0.0.1:1/0")
    assert RedisRateLimiter(dead, 1).take("k").allowed
    logins = RedisFailedLogins(dead, 1)
    logins.failed("k")
    assert logins.blocked_for("k") == 0
