"""create_admin_api on its own under a plain Starlette Mount, over an in-memory transport."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from cargohold.auth.authenticate import Authenticator
from cargohold.auth.policy import AccessPolicy
from cargohold.auth.store import AuthStore
from cargohold.http.api import create_admin_api
from cargohold.storage.meta import models
from cargohold.storage.meta.sqlbase import create_sql_engine

from .conftest import CHEAP


def _get(app: Starlette, path: str, auth: tuple[str, str] | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as http:
            return await http.get(path, auth=auth)

    return asyncio.run(go())


@pytest.fixture
def store(tmp_path: Path) -> AuthStore:
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    models.metadata.create_all(engine)
    store = AuthStore(engine)
    store.add_user("boss", CHEAP.hash("boss-password"), True)
    return store


def mount(store: AuthStore, prefix: str) -> Starlette:
    api = create_admin_api(store, Authenticator(store), AccessPolicy(store, True))
    return Starlette(routes=[Mount(prefix, app=api)])


@pytest.mark.parametrize("prefix", ["/api", "/admin/api"])
def test_document_and_docs_follow_the_mount_point(store: AuthStore, prefix: str) -> None:
    app = mount(store, prefix)
    document = _get(app, f"{prefix}/openapi.json").json()
    assert document["servers"] == [{"url": prefix}]
    assert "/v1/users/me" in document["paths"]
    assert f"{prefix}/openapi.json" in _get(app, f"{prefix}/docs").text
    me = _get(app, f"{prefix}/v1/users/me", ("boss", "boss-password"))
    assert me.json() == {"name": "boss", "kind": "user", "admin": True}


def test_an_unexpected_error_is_a_json_500(
    store: AuthStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> list[object]:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(store, "list_users", broken)
    resp = _get(mount(store, "/api"), "/api/v1/users", ("boss", "boss-password"))
    assert resp.status_code == 500
    assert resp.json()["errors"][0]["code"] == "UNKNOWN"
    assert "fire" not in resp.text
