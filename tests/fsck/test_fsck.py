"""`cargohold fsck` on a real data dir, broken for real: files deleted, overwritten and
dropped into the blob store, metadata rows removed with SQL."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from sqlalchemy import delete, text

from cargohold.core.fsck import Fsck, FsckOptions
from cargohold.core.registry import Registry
from cargohold.storage.meta import models as m
from cargohold.stores import Stores

from .conftest import (
    blob_file,
    cargohold,
    push_blob,
    push_image,
    push_index,
    push_referrer,
    sha256,
)

DAY = 24 * 3600


def kinds(report: dict) -> set[tuple[str, str]]:
    return {(f["kind"], f["subject"]) for f in report["findings"]}


def fsck_json(data_dir: Path, *args: str) -> tuple[int, dict]:
    result = cargohold(data_dir, "fsck", "--json", *args)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_a_clean_registry_has_nothing_to_report(registry: Registry, data_dir: Path) -> None:
    app = push_image(registry, "team/app", "v1")
    push_index(registry, "team/app", "multi", [app.digest])
    push_image(registry, "team/other", "v1", layers=3)

    code, report = fsck_json(data_dir)
    assert code == 0
    assert report["findings"] == [] and report["repaired"] == []
    assert report["problems_left"] == 0
    checked = report["checked"]
    assert checked["repositories"] == 2 and checked["manifests"] == 3 and checked["tags"] == 3
    assert checked["blobs"] == 7 and checked["stored_files"] == 7
    assert checked["bytes_hashed"] == checked["blob_bytes"] > 0

    human = cargohold(data_dir, "fsck")
    assert human.returncode == 0, human.stderr
    assert "No problems found" in human.stdout and "7 blobs" in human.stdout
    assert human.stderr == ""  # no progress bar when stderr is not a terminal


class Broken:
    """A registry with one of each problem fsck knows, made for real."""

    def __init__(self, registry: Registry, stores: Stores, data_dir: Path) -> None:
        self.app = push_image(registry, "team/app", "v1")
        self.other = push_image(registry, "team/other", "v1")
        third = push_image(registry, "team/third", "v1")
        self.index = push_index(registry, "team/third", "multi", [third.digest])
        self.referrer = push_referrer(registry, "team/app", sha256(b"no such image"))
        self.loose = push_blob(registry, "team/app", os.urandom(999))["digest"]

        # A layer a manifest names, and a blob only linked: their files deleted.
        self.missing = self.app.layers[0]
        blob_file(data_dir, self.missing).unlink()
        blob_file(data_dir, self.loose).unlink()
        # A layer overwritten with other bytes of the same size.
        self.corrupt = self.other.layers[1]
        path = blob_file(data_dir, self.corrupt)
        path.write_bytes(os.urandom(path.stat().st_size))
        # Files nobody recorded, in the store's own layout: one old, one just written.
        self.orphan_bytes = os.urandom(5000)
        self.orphan = sha256(self.orphan_bytes)
        old = blob_file(data_dir, self.orphan)
        old.parent.mkdir(parents=True, exist_ok=True)
        old.write_bytes(self.orphan_bytes)
        os.utime(old, (time.time() - 2 * DAY, time.time() - 2 * DAY))
        young_bytes = os.urandom(3000)
        self.young = sha256(young_bytes)
        young = blob_file(data_dir, self.young)
        young.parent.mkdir(parents=True, exist_ok=True)
        young.write_bytes(young_bytes)

        with stores.engine.begin() as conn:
            app_repo = conn.execute(
                text("SELECT id FROM repositories WHERE name = 'team/app'")
            ).scalar()
            # The link of a blob team/app's image names, deleted.
            conn.execute(
                delete(m.repository_blobs).where(
                    m.repository_blobs.c.repository_id == app_repo,
                    m.repository_blobs.c.digest == self.app.config,
                )
            )
        # team/third's image deleted by hand, leaving its tag and the index's entry.
        with stores.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.exec_driver_sql(
                "DELETE FROM manifest_blobs WHERE manifest_id IN "
                "(SELECT id FROM manifests WHERE digest = ?)",
                (third.digest,),
            )
            conn.exec_driver_sql("DELETE FROM manifests WHERE digest = ?", (third.digest,))
            conn.commit()
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")

        self.expected = {
            ("blob_missing", self.missing),
            ("blob_missing", self.loose),
            ("blob_digest_mismatch", self.corrupt),
            ("orphan_file", self.orphan),
            ("orphan_file_young", self.young),
            ("manifest_blob_unlinked", f"team/app@{self.app.digest} -> {self.app.config}"),
            ("tag_manifest_missing", "team/third:v1"),
            ("index_child_missing", f"team/third@{self.index}"),
            ("referrer_subject_absent", f"team/app@{self.referrer}"),
        }


def test_fsck_reports_exactly_what_was_broken(
    registry: Registry, stores: Stores, data_dir: Path
) -> None:
    broken = Broken(registry, stores, data_dir)

    code, report = fsck_json(data_dir)
    assert code == 1
    assert kinds(report) == broken.expected
    assert report["repaired"] == [] and report["problems_left"] == 7
    severity = {f["kind"]: f["severity"] for f in report["findings"]}
    assert severity["referrer_subject_absent"] == "info"
    assert severity["orphan_file_young"] == "info"
    assert severity["orphan_file"] == "warning" and severity["blob_missing"] == "error"
    missing = next(f for f in report["findings"] if f["subject"] == broken.missing)
    assert f"team/app@{broken.app.digest}" in missing["detail"]
    # A read-only check changed nothing.
    assert blob_file(data_dir, broken.orphan).exists()

    human = cargohold(data_dir, "fsck")
    assert human.returncode == 1
    for kind, _ in broken.expected:
        assert kind in human.stdout
    assert "7 problem(s) need attention" in human.stdout and "--repair" in human.stdout


def test_repair_fixes_the_safe_ones_and_says_what_it_did(
    registry: Registry, stores: Stores, data_dir: Path
) -> None:
    broken = Broken(registry, stores, data_dir)

    code, report = fsck_json(data_dir, "--repair")
    assert code == 1  # the missing layer a manifest names, the tag and the index remain
    assert kinds(report) == broken.expected
    done = {item["kind"]: item for item in report["repaired"]}
    assert {(i["kind"], i["subject"]) for i in report["repaired"]} == {
        ("blob_missing", broken.loose),
        ("blob_digest_mismatch", broken.corrupt),
        ("orphan_file", broken.orphan),
        ("manifest_blob_unlinked", f"team/app@{broken.app.digest} -> {broken.app.config}"),
    }
    assert "quarantine" in done["blob_digest_mismatch"]["action"]
    assert done["orphan_file"]["action"] == "deleted the file"
    by_subject = {f["subject"]: f for f in report["findings"]}
    assert by_subject[broken.missing]["repair"].startswith("cannot repair: referenced by")
    assert "upload the blob again" in by_subject[broken.missing]["repair"]
    assert by_subject["team/third:v1"]["repair"].startswith("cannot repair")
    assert report["problems_left"] == 3

    # What it did, for real.
    assert not blob_file(data_dir, broken.orphan).exists()
    assert blob_file(data_dir, broken.young).exists()  # young: left alone
    assert not blob_file(data_dir, broken.corrupt).exists()
    quarantined = list((data_dir / "quarantine").iterdir())
    assert len(quarantined) == 1
    assert quarantined[0].name.startswith(broken.corrupt.replace(":", "-"))
    assert stores.meta.blob_size("team/app", broken.loose) is None
    assert stores.meta.blob_size("team/app", broken.app.config) is not None
    assert stores.meta.blob_size("team/app", broken.missing) is not None  # referenced

    code, again = fsck_json(data_dir)
    assert code == 1
    assert kinds(again) == {
        ("blob_missing", broken.missing),
        ("blob_missing", broken.corrupt),  # quarantined: missing until uploaded again
        ("orphan_file_young", broken.young),
        ("tag_manifest_missing", "team/third:v1"),
        ("index_child_missing", f"team/third@{broken.index}"),
        ("referrer_subject_absent", f"team/app@{broken.referrer}"),
    }

    # Uploading the right bytes again restores both layers.
    push_blob(registry, "team/app", broken.app.layer_bytes[0])
    push_blob(registry, "team/other", broken.other.layer_bytes[1])
    code, last = fsck_json(data_dir, "--repair")
    assert {kind for kind, _ in kinds(last)} == {
        "orphan_file_young",
        "tag_manifest_missing",
        "index_child_missing",
        "referrer_subject_absent",
    }
    assert last["repaired"] == []


def test_repair_on_a_clean_registry_touches_nothing(registry: Registry, data_dir: Path) -> None:
    image = push_image(registry, "team/app", "v1")
    before = sorted(p.relative_to(data_dir) for p in (data_dir / "blobs").rglob("*"))
    code, report = fsck_json(data_dir, "--repair", "--grace-hours", "0")
    assert code == 0 and report["findings"] == [] and report["repaired"] == []
    assert sorted(p.relative_to(data_dir) for p in (data_dir / "blobs").rglob("*")) == before
    assert registry.meta.get_manifest("team/app", image.digest) is not None


def test_grace_hours_decides_which_orphans_are_young(registry: Registry, data_dir: Path) -> None:
    push_image(registry, "team/app", "v1")
    data = os.urandom(100)
    path = blob_file(data_dir, sha256(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (time.time() - 3600, time.time() - 3600))

    code, report = fsck_json(data_dir)  # the default grace: 24 hours
    assert code == 0 and kinds(report) == {("orphan_file_young", sha256(data))}
    code, report = fsck_json(data_dir, "--grace-hours", "0.5", "--repair")
    assert code == 0  # found and repaired: nothing left
    assert report["repaired"] == [
        {"kind": "orphan_file", "subject": sha256(data), "action": "deleted the file"}
    ]
    assert not path.exists()


def test_no_verify_content_only_compares_sizes(registry: Registry, data_dir: Path) -> None:
    image = push_image(registry, "team/app", "v1")
    same_size = blob_file(data_dir, image.layers[0])
    same_size.write_bytes(os.urandom(same_size.stat().st_size))
    other_size = blob_file(data_dir, image.layers[1])
    other_size.write_bytes(b"short")

    code, fast = fsck_json(data_dir, "--no-verify-content")
    assert code == 1
    assert kinds(fast) == {("blob_size_mismatch", image.layers[1])}
    assert fast["checked"]["bytes_hashed"] == 0
    code, full = fsck_json(data_dir)
    assert kinds(full) == {
        ("blob_size_mismatch", image.layers[1]),
        ("blob_digest_mismatch", image.layers[0]),
    }


def test_repository_limits_the_check(registry: Registry, data_dir: Path) -> None:
    app = push_image(registry, "team/app", "v1")
    other = push_image(registry, "team/other", "v1")
    blob_file(data_dir, app.layers[0]).unlink()
    blob_file(data_dir, other.layers[0]).unlink()

    code, report = fsck_json(data_dir, "--repository", "team/other")
    assert code == 1
    assert kinds(report) == {("blob_missing", other.layers[0])}
    assert report["checked"]["repositories"] == 1 and report["checked"]["blobs"] == 3
    assert report["checked"]["stored_files"] == 0  # orphans belong to no repository

    unknown = cargohold(data_dir, "fsck", "--repository", "team/nope")
    assert unknown.returncode == 2
    assert "team/nope is not known" in unknown.stderr


def test_repair_waits_for_no_one_while_a_collection_runs(
    registry: Registry, stores: Stores, data_dir: Path
) -> None:
    push_image(registry, "team/app", "v1")
    with stores.meta.gc_exclusive() as alone:
        assert alone
        busy = cargohold(data_dir, "fsck", "--repair")
        read_only = cargohold(data_dir, "fsck")
    assert busy.returncode == 3
    assert "garbage collection is running" in busy.stderr
    assert read_only.returncode == 0  # checking needs no lock


def test_a_damaged_manifest_is_reported(registry: Registry, stores: Stores, data_dir: Path) -> None:
    image = push_image(registry, "team/app", "v1")
    with stores.engine.begin() as conn:
        conn.execute(
            m.manifests.update()
            .where(m.manifests.c.digest == image.digest)
            .values(content=b'{"schemaVersion": 2}')
        )
    report = Fsck(stores.meta, stores.blobs, stores.engine).run(FsckOptions()).to_dict()
    assert kinds(report) == {("manifest_digest_mismatch", f"team/app@{image.digest}")}
    assert report["problems_left"] == 1


def test_help_explains(data_dir: Path) -> None:
    result = cargohold(data_dir, "fsck", "--help")
    assert result.returncode == 0
    for words in ("--repair", "--verify-content", "--repository", "--json", "Exit status"):
        assert words in result.stdout
