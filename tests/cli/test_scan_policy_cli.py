"""`cargohold scan policy|allow|allow-list|disallow` from a shell, on a prepared data dir."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cargohold.auth.audit import AuditStore
from cargohold.config import Settings
from cargohold.scan.policy import ScanPolicyStore
from cargohold.setup import prepare_storage
from cargohold.storage.meta.sqlbase import create_sql_engine

ACTOR = f"cli:{getpass.getuser()}"


def cargohold(data_dir: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, (args, result.returncode, result.stdout, result.stderr)
    return result


def as_json(data_dir: Path, *args: str) -> Any:
    return json.loads(cargohold(data_dir, *args, "--json").stdout)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    prepare_storage(Settings(data_dir=path))
    return path


def audit(data_dir: Path, action: str) -> list[Any]:
    engine = create_sql_engine(Settings(data_dir=data_dir).resolved_database_url)
    try:
        return AuditStore(engine).query(action=action)
    finally:
        engine.dispose()


def test_policy_set_show_remove(data_dir: Path) -> None:
    none = cargohold(data_dir, "scan", "policy", "show", "team").stdout
    assert "namespace team has no scan policy: every pull is allowed" in none
    assert as_json(data_dir, "scan", "policy", "show", "team") == {
        "namespace": "team",
        "policy": None,
        "allowlist": [],
    }

    out = cargohold(data_dir, "scan", "policy", "set", "team", "--severity", "HIGH").stdout
    assert "findings of severity high or worse; unscanned images allowed" in out
    made = as_json(
        data_dir, "scan", "policy", "set", "team", "--severity", "critical", "--deny-unscanned"
    )
    assert (made["namespace"], made["min_severity"], made["allow_unscanned"]) == (
        "team",
        "critical",
        False,
    )
    assert made["updated_by"] == ACTOR
    shown = as_json(data_dir, "scan", "policy", "show", "team")
    assert shown["policy"] == made and shown["allowlist"] == []
    table = cargohold(data_dir, "scan", "policy", "show", "team").stdout
    assert "severity critical or worse; unscanned images denied" in table
    assert "allow-list: (empty)" in table

    events = audit(data_dir, "scan_policy_set")
    assert {(e.actor, e.target, e.detail["min_severity"]) for e in events} == {
        (ACTOR, "team", "high"),
        (ACTOR, "team", "critical"),
    }
    removed = cargohold(data_dir, "scan", "policy", "remove", "team").stdout
    assert "removed the scan policy of namespace team" in removed
    again = cargohold(data_dir, "scan", "policy", "remove", "team", code=1)
    assert "has no scan policy" in again.stderr
    assert [e.target for e in audit(data_dir, "scan_policy_remove")] == ["team"]


def test_input_errors_exit_2_and_say_what_to_do(data_dir: Path) -> None:
    bad = cargohold(data_dir, "scan", "policy", "set", "team", "--severity", "unknown", code=2)
    assert "critical" in bad.stderr and "low" in bad.stderr
    repo = cargohold(data_dir, "scan", "policy", "set", "team/app", "--severity", "high", code=2)
    assert "a namespace has no '/'" in repo.stderr
    when = cargohold(data_dir, "scan", "allow", "team", "CVE-1", "--expires", "soon", code=2)
    assert "YYYY-MM-DD" in when.stderr
    past = cargohold(data_dir, "scan", "allow", "team", "CVE-1", "--expires", "2001-01-01", code=2)
    assert "has passed already" in past.stderr
    ident = cargohold(data_dir, "scan", "allow", "team", "CVE 1", code=2)
    assert "CVE-2024-1234" in ident.stderr
    missing = cargohold(data_dir, "scan", "disallow", "team", "CVE-1", code=1)
    assert "cargohold scan allow-list team" in missing.stderr


def test_allow_list_disallow(data_dir: Path) -> None:
    later = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    added = as_json(
        data_dir,
        "scan",
        "allow",
        "team",
        "cve-2030-0001",
        "--expires",
        later,
        "--reason",
        "vendor fix pending",
    )
    assert added["vulnerability"] == "cve-2030-0001" and added["expired"] is False
    assert added["expires_at"] == f"{later}T00:00:00+00:00"
    assert (added["reason"], added["created_by"]) == ("vendor fix pending", ACTOR)
    out = cargohold(data_dir, "scan", "allow", "team", "GHSA-abcd-efgh-ijkl").stdout
    assert "namespace team allows GHSA-abcd-efgh-ijkl with no expiry" in out
    # Again in another case: replaces the entry.
    cargohold(data_dir, "scan", "allow", "team", "CVE-2030-0001", "--expires", f"{later}T12:00Z")
    # One that has expired (written to the database directly: the CLI refuses past times).
    engine = create_sql_engine(Settings(data_dir=data_dir).resolved_database_url)
    now = datetime.now(UTC)
    ScanPolicyStore(engine).allow(
        "team", "CVE-2030-0009", now - timedelta(days=1), "old", "x", now=now - timedelta(days=2)
    )
    engine.dispose()

    listed = as_json(data_dir, "scan", "allow-list", "team")
    assert [(e["vulnerability"], e["expires_at"], e["expired"]) for e in listed] == [
        ("CVE-2030-0001", f"{later}T12:00:00+00:00", False),
        ("CVE-2030-0009", listed[1]["expires_at"], True),
        ("GHSA-abcd-efgh-ijkl", None, False),
    ]
    table = cargohold(data_dir, "scan", "allow-list", "team").stdout
    assert "(expired)" in table and "never" in table and "vendor fix pending" not in table
    assert as_json(data_dir, "scan", "policy", "show", "team")["allowlist"] == listed
    assert as_json(data_dir, "scan", "allow-list", "other") == []

    out = cargohold(data_dir, "scan", "disallow", "team", "ghsa-ABCD-efgh-ijkl").stdout
    assert "namespace team no longer allows GHSA-abcd-efgh-ijkl" in out
    left = as_json(data_dir, "scan", "allow-list", "team")
    assert [e["vulnerability"] for e in left] == ["CVE-2030-0001", "CVE-2030-0009"]

    adds = audit(data_dir, "scan_allow_add")
    assert {e.detail["vulnerability"] for e in adds} == {
        "cve-2030-0001",
        "CVE-2030-0001",
        "GHSA-abcd-efgh-ijkl",
    }
    assert all(e.actor == ACTOR and e.target == "team" for e in adds)
    [removal] = audit(data_dir, "scan_allow_remove")
    assert removal.detail == {"vulnerability": "GHSA-abcd-efgh-ijkl"}
