"""Two replicas share one request budget and one failed-login count through Redis."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from tests.conftest import LiveRegistry, add_user

PASSWORD = "replica-password"


def test_replicas_share_limits(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    add_user(data_dir, "alice", PASSWORD)
    env = {
        "CARGOHOLD_REDIS_URL": "redis://127.0.0.1:6379/0",
        "CARGOHOLD_REDIS_PREFIX": f"test-{uuid.uuid4().hex}",
        "CARGOHOLD_RATE_LIMIT_PER_MINUTE": "4",
        "CARGOHOLD_FAILED_LOGIN_LIMIT": "2",
    }
    a, b = LiveRegistry(data_dir, env), LiveRegistry(data_dir, env)
    try:
        auth = ("alice", PASSWORD)
        codes = [httpx.get(f"{server.url}/v2/", auth=auth).status_code for server in (a, b, a, b)]
        assert codes == [200, 200, 200, 200]
        refused = httpx.get(f"{b.url}/v2/", auth=auth)
        assert refused.status_code == 429 and refused.headers["ratelimit-remaining"] == "0"
        # Failed logins count across replicas too (anonymous budget is per address).
        assert httpx.get(f"{a.url}/token", auth=("alice", "wrong")).status_code == 401
        assert httpx.get(f"{b.url}/token", auth=("alice", "wrong")).status_code == 401
        assert httpx.get(f"{a.url}/token", auth=auth).status_code == 429
    finally:
        a.stop()
        b.stop()
