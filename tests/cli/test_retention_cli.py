"""`cargohold retention` from a shell, and retention on the garbage collection schedule.

The data directory is prepared in-process (tags put straight into the metadata store, push
times moved into the past, pulls written as the audit log's pull events); the commands
run as subprocesses against it, as an operator would run them.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from cargohold import gc_schedule
from cargohold.auth.audit import AuditEvent, AuditStore
from cargohold.config import Settings
from cargohold.setup import prepare_storage
from cargohold.storage.meta import ChangeOrigin, ManifestRecord
from cargohold.storage.meta import models as m
from cargohold.stores import Stores, open_stores

ACTOR = f"cli:{getpass.getuser()}"
PUSH = ChangeOrigin("pusher")


def cargohold(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cargohold", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def dg(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def image(text: str) -> ManifestRecord:
    return ManifestRecord(dg(text), "application/vnd.oci.image.manifest.v1+json", text.encode())


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    prepare_storage(Settings(data_dir=path))
    return path


@pytest.fixture
def stores(data_dir: Path) -> Iterator[Stores]:
    opened = open_stores(Settings(data_dir=data_dir))
    yield opened
    opened.close()


def tag(stores: Stores, repository: str, name: str, days_ago: float, text: str) -> str:
    """Push `text` as repository:name, last pushed `days_ago` days ago; its digest."""
    stores.meta.put_manifest(repository, image(text), [], [], [name], PUSH)
    with stores.engine.begin() as conn:
        repo_id = conn.execute(
            select(m.repositories.c.id).where(m.repositories.c.name == repository)
        ).scalar_one()
        conn.execute(
            update(m.tags)
            .where(m.tags.c.repository_id == repo_id, m.tags.c.name == name)
            .values(updated_at=datetime.now(UTC) - timedelta(days=days_ago))
        )
    return dg(text)


def pulled(stores: Stores, repository: str, reference: str, digest: str, days_ago: float) -> None:
    at = datetime.now(UTC) - timedelta(days=days_ago)
    detail = {"reference": reference, "digest": digest}
    AuditStore(stores.engine).add([AuditEvent("someone", "pull", repository, detail=detail, at=at)])


def tags_of(stores: Stores, repository: str) -> list[str]:
    return stores.meta.list_tags(repository, None, None)


def scenario(stores: Stores) -> dict[str, str]:
    """team/app and team/web with releases, dev builds and pulls; the digests by tag."""
    digests = {
        "v1": tag(stores, "team/app", "v1", 300, "a1"),
        "v2": tag(stores, "team/app", "v2", 200, "a2"),
        "v3": tag(stores, "team/app", "v3", 100, "a3"),
        "v4": tag(stores, "team/app", "v4", 50, "a4"),
        "v5": tag(stores, "team/app", "v5", 2, "a5"),
        "dev-1": tag(stores, "team/app", "dev-1", 40, "d1"),
        "dev-2": tag(stores, "team/app", "dev-2", 3, "d2"),
        "latest": tag(stores, "team/app", "latest", 400, "a5"),
        "web-v1": tag(stores, "team/web", "v1", 500, "w1"),
        "web-v2": tag(stores, "team/web", "v2", 400, "w2"),
        "web-v3": tag(stores, "team/web", "v3", 60, "w3"),
        "web-v4": tag(stores, "team/web", "v4", 70, "w4"),
        "other": tag(stores, "crew/app", "v1", 900, "c1"),
    }
    pulled(stores, "team/app", "v2", dg("a2"), days_ago=1)  # by tag: keeps v2
    pulled(stores, "team/app", dg("a3"), dg("a3"), days_ago=200)  # too long ago
    pulled(stores, "team/web", dg("w1"), dg("w1"), days_ago=5)  # by digest: keeps web v1
    return digests


def test_add_list_remove_and_invalid_input(data_dir: Path) -> None:
    added = ok(
        cargohold(data_dir, "retention", "add", "team", "--pattern", "v*", "--keep-last", "3")
    )
    assert "retention policy 1 ('v*' in namespace team): keep last 3" in added
    made = json.loads(
        ok(
            cargohold(
                data_dir,
                *("retention", "add", "team", "--pattern", "dev-*", "--repository", "team/app"),
                *("--keep-last", "1", "--keep-days", "7", "--json"),
            )
        )
    )
    assert {k: made[k] for k in ("repository", "tag_pattern", "keep_last", "keep_days")} == {
        "repository": "team/app",
        "tag_pattern": "dev-*",
        "keep_last": 1,
        "keep_days": 7,
    }
    assert made["created_by"] == ACTOR
    listed = json.loads(ok(cargohold(data_dir, "retention", "list", "team", "--json")))
    assert [(p["id"], p["tag_pattern"], p["repository"]) for p in listed] == [
        (1, "v*", None),
        (made["id"], "dev-*", "team/app"),
    ]
    table = ok(cargohold(data_dir, "retention", "list", "team"))
    assert "dev-*" in table and "team/app" in table and "(all)" in table
    assert ok(cargohold(data_dir, "retention", "list", "crew")).strip() == "(none)"

    duplicate = cargohold(
        data_dir, "retention", "add", "team", "--pattern", "v*", "--keep-days", "1"
    )
    assert duplicate.returncode == 1 and "exists already" in duplicate.stderr
    for args in (
        ("add", "team", "--pattern", "v*"),  # no keep
        ("add", "team/app", "--pattern", "v*", "--keep-last", "1"),
        ("add", "team", "--pattern", "v/x", "--keep-last", "1"),
        ("add", "team", "--pattern", "v*", "--keep-last", "-1"),
        ("add", "team", "--pattern", "v*", "--repository", "crew/app", "--keep-last", "1"),
        ("run", "Team"),
    ):
        result = cargohold(data_dir, "retention", *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)

    assert "removed retention policy 1" in ok(
        cargohold(data_dir, "retention", "remove", "team", "1")
    )
    gone = cargohold(data_dir, "retention", "remove", "team", "1")
    assert gone.returncode == 1 and "no retention policy 1" in gone.stderr
    wrong = cargohold(data_dir, "retention", "remove", "crew", str(made["id"]))
    assert wrong.returncode == 1
    assert len(json.loads(ok(cargohold(data_dir, "retention", "list", "team", "--json")))) == 1
    audit = audit_of(data_dir, "retention_policy_add")
    assert [(e.actor, e.target) for e in audit] == [(ACTOR, "team/app"), (ACTOR, "team")]


def audit_of(data_dir: Path, action: str) -> list[AuditEvent]:
    opened = open_stores(Settings(data_dir=data_dir))
    try:
        return AuditStore(opened.engine).query(action=action)
    finally:
        opened.close()


def test_dry_run_lists_exactly_what_the_run_removes(data_dir: Path, stores: Stores) -> None:
    digests = scenario(stores)
    stores.meta.add_immutable_rule("team", "team/app", "v1", None)
    add = ("retention", "add", "team")
    ok(cargohold(data_dir, *add, "--pattern", "v*", "--keep-last", "2", "--keep-days", "30"))
    ok(cargohold(data_dir, *add, "--pattern", "dev-*", "--keep-last", "0"))
    ok(
        cargohold(
            data_dir, *add, "--pattern", "dev-*", "--keep-days", "7", "--repository", "team/app"
        )
    )
    before = {repo: tags_of(stores, repo) for repo in ("team/app", "team/web", "crew/app")}

    dry = json.loads(ok(cargohold(data_dir, "retention", "run", "--dry-run", "--json")))
    would = {
        (repo, item["tag"], item["digest"])
        for repo, entry in dry["repositories"].items()
        for item in entry["removed"]
    }
    # team/app: v5 and v4 are the newest two v*, v2 was pulled yesterday, v1 is immutable;
    # dev-2 is 3 days old (the 7-day policy keeps it; keep wins over keep-last 0).
    # team/web: v3 and v4 are the newest two, v1's digest was pulled 5 days ago.
    # latest and crew/app match no policy.
    assert would == {
        ("team/app", "v3", digests["v3"]),
        ("team/app", "dev-1", digests["dev-1"]),
        ("team/web", "v2", digests["web-v2"]),
    }
    assert dry["dry_run"] is True and dry["removed"] == 3 and dry["policies"] == 3
    assert dry["kept"] == 8  # v1 v2 v4 v5 dev-2, web v1 v3 v4
    assert {repo: tags_of(stores, repo) for repo in before} == before
    text = ok(cargohold(data_dir, "retention", "run", "team", "--dry-run"))
    assert "Would remove (dry run)" in text and "would remove 3 tags, kept 8" in text
    for _, name, digest in would:
        assert name in text and digest in text

    real = json.loads(ok(cargohold(data_dir, "retention", "run", "--json")))
    assert real["dry_run"] is False
    assert real["repositories"] == dry["repositories"]
    assert tags_of(stores, "team/app") == ["dev-2", "latest", "v1", "v2", "v4", "v5"]
    assert tags_of(stores, "team/web") == ["v1", "v3", "v4"]
    assert tags_of(stores, "crew/app") == before["crew/app"]
    # The manifests stay (untagged) for garbage collection.
    assert stores.meta.get_manifest("team/app", digests["v3"]) is not None

    for repo, name, digest in would:
        event = stores.meta.tag_history(repo, name, limit=1)[0]
        assert (event.action, event.via, event.actor) == ("deleted", "retention", ACTOR)
        assert event.old_digest == digest
    events = AuditStore(stores.engine).query(action="retention_delete")
    assert {(e.target, e.actor, e.detail["digest"]) for e in events} == {
        (f"{repo}:{name}", ACTOR, digest) for repo, name, digest in would
    }
    shown = json.loads(
        ok(
            cargohold(
                data_dir, "audit", "--action", "retention_delete", "--target", "team", "--json"
            )
        )
    )
    assert len(shown) == 3

    again = ok(cargohold(data_dir, "retention", "run", "team"))
    assert "removed 0 tags, kept 8" in again
    assert len(AuditStore(stores.engine).query(action="retention_delete")) == 3


def test_retention_runs_on_the_schedule_before_collection(
    data_dir: Path, stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=data_dir, gc_grace_hours=0)
    scenario(stores)
    stores.meta.add_retention_policy("team", "team/web", "*", 0, None, "me")
    gc_schedule.run_once(settings)
    assert tags_of(stores, "team/web") == []
    event = stores.meta.tag_history("team/web", "v1", limit=1)[0]
    assert (event.via, event.actor) == ("retention", "schedule")
    assert {e.target for e in AuditStore(stores.engine).query(action="retention_delete")} == {
        f"team/web:v{i}" for i in range(1, 5)
    }
    assert len(stores.meta.gc_runs()) == 1
    assert stores.meta.gc_runs()[0]["trigger"] == "schedule"

    # A failing retention does not stop the collection, nor a failing collection retention.
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    stores.meta.add_retention_policy("team", "team/app", "dev-*", 0, None, "me")
    with monkeypatch.context() as patch:
        patch.setattr(gc_schedule.RetentionService, "run", broken)
        gc_schedule.run_once(settings)
    assert len(stores.meta.gc_runs()) == 2
    assert "dev-1" in tags_of(stores, "team/app")
    with monkeypatch.context() as patch:
        patch.setattr(gc_schedule, "collect", broken)
        gc_schedule.run_once(settings)
    assert len(stores.meta.gc_runs()) == 2
    assert [t for t in tags_of(stores, "team/app") if t.startswith("dev-")] == []
