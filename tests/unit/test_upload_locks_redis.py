"""Upload-session locks in Redis, shared by every replica."""

from __future__ import annotations

import time
import uuid

from cargohold.shared_redis import redis_client
from cargohold.storage.blobs.locks import RedisUploadLocks

REDIS_URL = "redis://127.0.0.1:6379/0"


def test_one_writer_at_a_time_across_replicas() -> None:
    prefix = f"test-{uuid.uuid4().hex}"
    a = RedisUploadLocks(redis_client(REDIS_URL), prefix)
    b = RedisUploadLocks(redis_client(REDIS_URL), prefix)
    token = a.acquire("u1")
    assert token is not None
    assert b.acquire("u1") is None
    assert b.acquire("u2") is not None  # other sessions are independent
    assert a.holds("u1", token) and not b.holds("u1", "forged")
    b.release("u1", "forged")  # a wrong token releases nothing
    assert a.holds("u1", token)
    a.release("u1", token)
    assert not a.holds("u1", token)
    assert b.acquire("u1") is not None


def test_an_abandoned_lock_expires_and_the_old_holder_cannot_release_the_new_one() -> None:
    prefix = f"test-{uuid.uuid4().hex}"
    crashed = RedisUploadLocks(redis_client(REDIS_URL), prefix, ttl=0.2)
    other = RedisUploadLocks(redis_client(REDIS_URL), prefix, ttl=30)
    old = crashed.acquire("u")
    assert old is not None
    time.sleep(0.3)
    new = other.acquire("u")
    assert new is not None
    assert not crashed.holds("u", old)
    crashed.release("u", old)  # late release after the takeover
    assert other.holds("u", new)


def test_a_renewed_lock_outlives_its_ttl_and_a_lost_one_cannot_be_renewed() -> None:
    prefix = f"test-{uuid.uuid4().hex}"
    holder = RedisUploadLocks(redis_client(REDIS_URL), prefix, ttl=0.5)
    other = RedisUploadLocks(redis_client(REDIS_URL), prefix, ttl=30)
    token = holder.acquire("u")
    assert token is not None
    for _ in range(3):
        time.sleep(0.3)
        assert holder.renew("u", token)
    assert other.acquire("u") is None  # 0.9 s after acquiring: still held
    assert not holder.renew("u", "forged")
    time.sleep(0.6)  # not renewed: expired
    assert not holder.renew("u", token)
    assert other.acquire("u") is not None
