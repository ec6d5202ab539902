"""Two real registries on loopback: an upstream cargohold with a user (so pulls need Docker
token auth) and a cache cargohold whose namespaces are pull-through caches of it.

Both run in-process under uvicorn (tests/adminapi's ThreadServer). The upstream's app is
wrapped in a counter of the requests it receives, so tests can assert how many blob GETs
reached it. Stopping the upstream closes its socket: the cache then sees "connection
refused", as with a registry that is down.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from tests.adminapi.conftest import CHEAP, ThreadServer
from tests.e2e.skopeo import Skopeo, find_skopeo

from cargohold.auth.store import AuthStore
from cargohold.config import Settings
from cargohold.http.app import create_app
from cargohold.proxy.manage import ProxyRules
from cargohold.proxy.secrets import SecretBox
from cargohold.proxy.store import ProxyStore
from cargohold.setup import prepare_storage
from cargohold.storage.meta.sqlbase import create_sql_engine


class Counting:
    """ASGI wrapper: records (method, path, status) of every request the upstream answers."""

    def __init__(self, app: object) -> None:
        self.app = app
        self.requests: list[tuple[str, str, int]] = []

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # type: ignore[operator]
            return

        async def recording_send(message):  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                self.requests.append((scope["method"], scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, recording_send)  # type: ignore[operator]

    def count(self, method: str, fragment: str, status: int | None = None) -> int:
        """Requests with `fragment` in the path; with `status`, only those answered so
        (a 401 that only asks for a token is not a fetch)."""
        return sum(
            1
            for m, p, code in self.requests
            if m == method and fragment in p and (status is None or code == status)
        )


@dataclass
class Upstream:
    url: str
    host: str
    user: str
    password: str
    counter: Counting
    server: ThreadServer | None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    @property
    def creds(self) -> str:
        return f"{self.user}:{self.password}"


@dataclass
class Cache:
    url: str
    host: str
    data_dir: Path
    rules: ProxyRules
    server: ThreadServer
    extra: list[object] = field(default_factory=list)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)


def start_upstream(tmp: Path) -> Upstream:
    settings = Settings(data_dir=tmp / "upstream", access_log=False, workers=1)
    prepare_storage(settings)
    store = AuthStore(create_sql_engine(settings.resolved_database_url))
    user, password = f"up{os.urandom(3).hex()}", f"pw-{os.urandom(6).hex()}"
    store.add_user(user, CHEAP.hash(password), False)
    store.close()
    counter = Counting(create_app(settings))
    server = ThreadServer(counter)  # type: ignore[arg-type]
    return Upstream(server.url, server.url.split("://")[1], user, password, counter, server)


def start_cache(tmp: Path) -> Cache:
    settings = Settings(data_dir=tmp / "cache", access_log=False, workers=1)
    prepare_storage(settings)
    engine = create_sql_engine(settings.resolved_database_url)
    rules = ProxyRules(ProxyStore(engine), SecretBox(settings.secrets_key_path))
    app = create_app(settings)
    app.state.registry.proxy._rule_cache_seconds = 0  # rules added by tests apply at once
    server = ThreadServer(app)
    return Cache(server.url, server.url.split("://")[1], settings.data_dir, rules, server, [app])


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    up = start_upstream(tmp_path)
    try:
        yield up
    finally:
        up.stop()


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    c = start_cache(tmp_path)
    try:
        yield c
    finally:
        c.server.stop()
        c.extra[0].state.registry.proxy.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def skopeo(tmp_path_factory: pytest.TempPathFactory) -> Skopeo:
    return Skopeo(find_skopeo(), tmp_path_factory.mktemp("skopeo-tmp"))
