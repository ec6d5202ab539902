"""An in-process registry with the admin API mounted at /api, served by uvicorn in a thread.

The app is ``create_app(settings)``; if it does not mount the admin API yet, the harness
mounts ``create_admin_api`` at ``/api`` exactly as the registry is meant to (a Starlette
``Mount``), sharing the registry's authenticator, access policy, audit log and failed-login
counter. A real socket (not an in-memory transport) lets the synchronous OCI push helpers
drive /v2 too.

Users are added straight through the store (fast); everything else goes through the API.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.routing import Mount
from tests.conftest import free_port

from cargohold.auth.store import AuthStore
from cargohold.config import Settings
from cargohold.http.api import create_admin_api
from cargohold.http.app import create_app
from cargohold.setup import prepare_storage
from cargohold.storage.meta.sqlbase import create_sql_engine

Auth = tuple[str, str]
# Real argon2id hashes with tiny costs: verifying reads the costs from the hash, so logging
# in as a test user is fast. Users added through the API get the registry's real costs.
CHEAP = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


def mounted(app: Starlette) -> bool:
    return any(isinstance(route, Mount) and route.path == "/api" for route in app.routes)


def build_app(settings: Settings) -> Starlette:
    app = create_app(settings)
    if not mounted(app):
        store = AuthStore(create_sql_engine(settings.resolved_database_url))
        api = create_admin_api(
            store,
            app.state.authenticator,
            app.state.policy,
            audit=app.state.audit,
            failed_logins=app.state.failed_logins,
        )
        app.router.routes.insert(0, Mount("/api", app=api))
    return app


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(4).hex()}"


def codes(resp: httpx.Response) -> list[str]:
    return [error["code"] for error in resp.json()["errors"]]


def expect(resp: httpx.Response, status: int, code: str | None = None) -> Any:
    """Assert the status (and the error code); return the JSON body, if any."""
    assert resp.status_code == status, f"{resp.request.method} {resp.request.url}: " + (
        f"{resp.status_code} {resp.text}"
    )
    if code is not None:
        assert codes(resp) == [code], resp.text
        assert resp.headers["content-type"].startswith("application/json")
    return resp.json() if resp.content else None


@dataclass
class Api:
    url: str
    store: AuthStore
    admin: Auth
    http: httpx.Client

    def client(self, auth: Auth | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=auth, timeout=30)

    def call(
        self, method: str, path: str, auth: Auth | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One request to the admin API (path under /api) on the shared keep-alive client."""
        return self.http.request(
            method, f"/api{path}", auth=auth or httpx.USE_CLIENT_DEFAULT, **kwargs
        )

    def add_user(self, prefix: str = "user", *, admin: bool = False) -> Auth:
        """A new user (with its personal namespace); returns its basic credentials."""
        name = unique(prefix)
        password = f"pw-{os.urandom(6).hex()}"
        self.store.add_user(name, CHEAP.hash(password), admin)
        return name, password

    def add_org(self, prefix: str = "org", *, public: bool = False) -> str:
        name = unique(prefix)
        expect(
            self.call("POST", "/v1/orgs", self.admin, json={"name": name, "public": public}), 201
        )
        return name

    def grant(self, ns: str, role: str, user: str) -> None:
        body = {"user": user, "role": role}
        expect(self.call("POST", f"/v1/namespaces/{ns}/members", self.admin, json=body), 201)


class ThreadServer:
    def __init__(self, app: Starlette) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_level="warning",
            ws="none",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir: Path = tmp_path_factory.mktemp("adminapi") / "data"
    settings = Settings(data_dir=data_dir, access_log=False, workers=1)
    prepare_storage(settings)
    store = AuthStore(create_sql_engine(settings.resolved_database_url))
    admin_password = f"pw-{os.urandom(6).hex()}"
    store.add_user("root", CHEAP.hash(admin_password), True)
    server = ThreadServer(build_app(settings))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            yield Api(server.url, store, ("root", admin_password), http)
    finally:
        server.stop()
        store.close()
