"""Real registries on loopback for the replication tests.

- ``source``: a cargohold server process (LiveRegistry, open mode) whose replication
  worker runs the rules; tests add endpoints and rules to its database directly
  (ReplicationStore) or through the CLI, and push to it over HTTP.
- ``dest``: a second cargohold, in-process under uvicorn, with an admin user, so every
  request of the worker goes through Docker token auth; its app is wrapped in a request
  counter (HEADs, mounts, uploads).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.adminapi.conftest import CHEAP, ThreadServer
from tests.conftest import LiveRegistry

from cargohold.auth.store import AuthStore
from cargohold.config import Settings
from cargohold.http.app import create_app
from cargohold.replication import Execution, ReplicationStore
from cargohold.replication.store import FINAL_STATES
from cargohold.secretbox import SecretBox
from cargohold.setup import prepare_storage
from cargohold.storage.meta.sqlbase import create_sql_engine

FAST = {
    "CARGOHOLD_REPLICATION_POLL_SECONDS": "0.3",
    "CARGOHOLD_REPLICATION_BACKOFF_SECONDS": "1",
    "CARGOHOLD_WEBHOOK_WORKERS": "0",
}


class RequestLog:
    """ASGI wrapper around the destination app: (method, path) of each request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[tuple[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.requests.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)

    def count(self, method: str, fragment: str) -> int:
        return len([1 for verb, path in self.requests if verb == method and fragment in path])


@dataclass
class Source:
    server: LiveRegistry
    store: ReplicationStore
    http: httpx.Client

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    def wait(self, execution_id: int, timeout: float = 30) -> Execution:
        deadline = time.monotonic() + timeout
        while True:
            execution = self.store.execution(execution_id)
            assert execution is not None
            if execution.state in FINAL_STATES or time.monotonic() > deadline:
                return execution
            time.sleep(0.2)

    def wait_for_executions(self, rule_id: int, count: int, timeout: float = 30) -> list[Execution]:
        """At least ``count`` executions of the rule, all finished (newest first)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.store.executions(rule_id)
            if len(found) >= count and all(x.state in FINAL_STATES for x in found):
                return found
            if time.monotonic() > deadline:
                pytest.fail(f"executions of rule {rule_id}: {found}", pytrace=False)
            time.sleep(0.2)


@dataclass
class Dest:
    url: str
    host: str
    user: str
    password: str
    counter: RequestLog
    server: ThreadServer | None
    settings: Settings

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, auth=(self.user, self.password))

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def start_source(root: Path) -> Source:
    server = LiveRegistry(root / "data", FAST)
    settings = Settings(data_dir=server.data_dir)
    engine = create_sql_engine(settings.resolved_database_url, 2)
    store = ReplicationStore(engine, SecretBox(settings.secrets_key_path))
    return Source(server, store, httpx.Client(base_url=server.url, timeout=60))


def start_dest(root: Path, port: int | None = None) -> Dest:
    settings = Settings(data_dir=root / "data", access_log=False, workers=1)
    prepare_storage(settings)
    store = AuthStore(create_sql_engine(settings.resolved_database_url))
    user, password = "replicator", f"pw-{os.urandom(6).hex()}"
    if store.get_user(user) is None:
        store.add_user(user, CHEAP.hash(password), True)
    store.close()
    counter = RequestLog(create_app(settings))
    server = ThreadServer(counter)  # type: ignore[arg-type]
    return Dest(server.url, server.url.split("://")[1], user, password, counter, server, settings)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    src = start_source(tmp_path_factory.mktemp("replication-source"))
    try:
        yield src
    finally:
        src.http.close()
        src.server.stop()
        src.store.close()


@pytest.fixture
def dest(tmp_path: Path) -> Iterator[Dest]:
    d = start_dest(tmp_path / "dest")
    try:
        yield d
    finally:
        d.stop()


def unique_name(prefix: str) -> str:
    return f"{prefix}{os.urandom(3).hex()}"


def skopeo_copy_by_digest(
    host: str, repository: str, digest: str, creds: tuple[str, str], out: Path
) -> str:
    """Copy ``repository@digest`` (every platform) out of a registry with skopeo, as a
    client would pull it; the digest of what skopeo wrote as the layout's root."""
    import json

    from tests.e2e.skopeo import Skopeo, find_skopeo

    tmp = out.parent / f"{out.name}-tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    Skopeo(find_skopeo(), tmp).copy(
        f"docker://{host}/{repository}@{digest}",
        f"oci:{out}:copied",
        "--all",
        "--preserve-digests",  # fail rather than rewrite anything whose digest is pinned
        "--src-tls-verify=false",
        "--src-creds",
        ":".join(creds),
    )
    index = json.loads((out / "index.json").read_text())
    [root] = index["manifests"]
    return str(root["digest"])
