"""Abuse limits over HTTP: budgets with RateLimit-* headers, pauses after failed logins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveRegistry, add_user

PASSWORD = "limits-password"


def start(tmp_path: Path, **env: str) -> LiveRegistry:
    data_dir = tmp_path / "data"
    add_user(data_dir, "alice", PASSWORD, admin=True)
    return LiveRegistry(data_dir, {"CARGOHOLD_TEST_WORKERS": "1", **env})


@pytest.fixture
def rate_limited(tmp_path: Path) -> Iterator[LiveRegistry]:
    server = start(tmp_path, CARGOHOLD_RATE_LIMIT_PER_MINUTE="4")
    yield server
    server.stop()


@pytest.fixture
def login_limited(tmp_path: Path) -> Iterator[LiveRegistry]:
    server = start(tmp_path, CARGOHOLD_FAILED_LOGIN_LIMIT="3")
    yield server
    server.stop()


def test_request_budget_is_announced_and_enforced(rate_limited: LiveRegistry) -> None:
    responses = [httpx.get(f"{rate_limited.url}/v2/", auth=("alice", PASSWORD)) for _ in range(5)]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 429]
    assert [r.headers["ratelimit-remaining"] for r in responses[:4]] == ["3", "2", "1", "0"]
    assert all(r.headers["ratelimit-limit"] == "4" for r in responses)
    refused = responses[4]
    assert refused.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert int(refused.headers["retry-after"]) >= 1


def test_failed_logins_pause_the_address(login_limited: LiveRegistry) -> None:
    url = login_limited.url
    wrong = [httpx.get(f"{url}/v2/", auth=("alice", "wrong")).status_code for _ in range(3)]
    assert wrong == [401, 401, 401]
    paused = httpx.get(f"{url}/v2/", auth=("alice", PASSWORD))
    assert paused.status_code == 429
    assert int(paused.headers["retry-after"]) > 0
    token = httpx.get(f"{url}/token", auth=("alice", PASSWORD))
    assert token.status_code == 429
