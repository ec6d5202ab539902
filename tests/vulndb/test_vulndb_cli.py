"""`cargohold vulndb import` from a folder and a zip, and `cargohold vulndb status`."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from tests.vulndb.conftest import MALFORMED, OSV


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    data_dir = str(tmp_path / "data")

    def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "cargohold", "vulndb", *args, "--data-dir", data_dir],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == code, result.stderr
        return result

    return run


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for file in sorted(folder.rglob("*.json")):
            out.write(file, f"osv-export/{file.relative_to(folder)}")
        out.writestr("osv-export/README.md", "not a record")
    return archive


def test_import_folder_then_zip_then_status(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert "no advisories imported yet" in cli("status").stdout
    empty = json.loads(cli("status", "--json").stdout)
    assert empty == {
        "records": 0,
        "withdrawn": 0,
        "by_ecosystem": {},
        "imports": 0,
        "last_import": None,
    }

    first = json.loads(cli("import", str(OSV), "--json").stdout)
    assert (first["source"], first["files"], first["records"]) == ("osv", 144, 145)
    assert (first["added"], first["updated"], first["withdrawn"]) == (145, 0, 3)
    assert first["by_ecosystem"]["PyPI"] == 126 and first["by_ecosystem"]["Debian:12"] == 3

    archive = zip_folder(OSV, tmp_path / "all.zip")
    second = json.loads(cli("import", str(archive), "--json").stdout)
    assert (second["source"], second["files"], second["records"]) == ("all.zip", 144, 145)
    assert (second["added"], second["updated"]) == (0, 145)
    assert second["by_ecosystem"] == first["by_ecosystem"]
    assert second["ignored"] == first["ignored"]

    broken = zip_folder(MALFORMED, tmp_path / "broken.zip")
    third = cli("import", str(broken)).stdout  # the table, not JSON
    assert "records saved" in third and "Skipped records" in third
    assert "missing or invalid id" in third and "invalid JSON" in third

    status = json.loads(cli("status", "--json").stdout)
    assert (status["records"], status["withdrawn"], status["imports"]) == (146, 3, 3)
    assert status["by_ecosystem"]["PyPI"] == 127
    assert status["last_import"]["source"] == "broken.zip"
    assert status["last_import"]["counts"]["skipped"]["invalid JSON"] == 3
    table = cli("status").stdout
    assert "last import" in table and "broken.zip" in table and "146" in table


def test_import_errors(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = cli("import", str(tmp_path / "nope"), code=2)
    assert "does not exist" in missing.stderr
    (tmp_path / "empty").mkdir()
    assert "no .json files" in cli("import", str(tmp_path / "empty"), code=1).stderr
    (tmp_path / "fake.zip").write_bytes(b"PK\x03\x04 truncated")
    assert cli("import", str(tmp_path / "fake.zip"), code=2).stderr.startswith("error:")
    assert json.loads(cli("status", "--json").stdout)["imports"] == 0
