"""The one way cargohold connects to Redis: short timeouts, so a slow Redis degrades
requests instead of hanging them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported only by setups that use Redis (~70 ms, every CLI command)
    import redis

TIMEOUT = 0.5  # seconds, for connecting and for each reply


def redis_client(url: str) -> redis.Redis:
    import redis

    return redis.Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
