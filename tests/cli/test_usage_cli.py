"""`cargohold usage` and `cargohold quota` from a shell, against a data dir set up through
the registry core (blobs committed as uploads commit them, manifests put as pushes do)."""

from __future__ import annotations

import getpass
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cargohold.auth.audit import AuditStore
from cargohold.config import load_settings
from cargohold.core.registry import Registry
from cargohold.setup import prepare_storage
from cargohold.sizes import format_size, parse_size
from cargohold.stores import open_stores

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Data:
    def __init__(self, path: Path) -> None:
        self.path = path
        settings = load_settings(None, data_dir=path)
        prepare_storage(settings)
        self.stores = open_stores(settings)
        self.registry = Registry(self.stores.blobs, self.stores.meta, settings.max_manifest_size)

    def blob(self, repository: str, data: bytes) -> dict[str, Any]:
        self.stores.meta.link_blob(repository, sha(data), len(data))
        return {"mediaType": "application/octet-stream", "digest": sha(data), "size": len(data)}

    def image(self, repository: str, tag: str, config: bytes, *layers: bytes) -> int:
        """Push an image; its manifest's size."""
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": self.blob(repository, config),
                "layers": [self.blob(repository, layer) for layer in layers],
            }
        ).encode()
        self.registry.manifests.put(repository, tag, body, MANIFEST)
        return len(body)


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Data]:
    d = Data(tmp_path / "data")
    yield d
    d.stores.close()


def cargohold(data: Data, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", *args, "--data-dir", str(data.path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, (args, result.returncode, result.stdout, result.stderr)
    return result


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


def test_usage_of_registry_namespace_and_repository(data: Data) -> None:
    shared, own, other = b"s" * 3000, b"o" * 5000, b"x" * 7000
    m1 = data.image("team/app", "v1", b"{}", shared, own)
    m2 = data.image("team/web", "v1", b"{}", shared)
    m3 = data.image("other/app", "v1", b"{}", shared, other)
    cargohold(data, "quota", "set", "team", "10KiB")

    registry = as_json(cargohold(data, "usage", "--json"))
    assert {key: registry[key] for key in ("stored_bytes", "shared_bytes", "blobs")} == {
        "stored_bytes": 2 + 3000 + 5000 + 7000,
        "shared_bytes": 2 + 3000,  # the config {} and the shared layer
        "blobs": 4,
    }
    assert registry["logical_bytes"] == m1 + m2 + m3 + 3 * 2 + 3 * 3000 + 5000 + 7000
    assert (registry["manifests"], registry["repository_count"]) == (3, 3)
    namespaces = {ns["namespace"]: ns for ns in registry["namespaces"]}
    assert namespaces["team"]["stored_bytes"] == 2 + 3000 + 5000
    assert namespaces["team"]["shared_bytes"] == 2 + 3000  # also in namespace other
    assert namespaces["team"]["quota_bytes"] == 10 * 1024
    assert namespaces["team"]["quota_used_percent"] == round(8002 * 100 / 10240, 1)
    assert namespaces["other"]["quota_bytes"] is None

    team = as_json(cargohold(data, "usage", "team", "--json"))
    assert team["stored_bytes"] == 8002 and team["repository_count"] == 2
    assert team["logical_bytes"] == m1 + m2 + 2 * 2 + 2 * 3000 + 5000
    assert [
        (r["repository"], r["stored_bytes"], r["shared_bytes"]) for r in team["repositories"]
    ] == [
        ("team/app", 8002, 3002),
        ("team/web", 3002, 3002),
    ]
    app = as_json(cargohold(data, "usage", "team/app", "--json"))
    assert app == {
        "repository": "team/app",
        "logical_bytes": m1 + 2 + 3000 + 5000,
        "stored_bytes": 8002,
        "shared_bytes": 3002,
        "blobs": 3,
        "manifests": 1,
    }

    table = cargohold(data, "usage").stdout
    assert "team" in table and "other" in table
    assert format_size(8002) in table and "10 KiB" in table and "78.1%" in table
    table = cargohold(data, "usage", "team").stdout
    assert "team/app" in table and "team/web" in table and format_size(8002) in table
    assert "team/app" in cargohold(data, "usage", "team/app").stdout
    # A namespace without repositories has zeros; a missing repository is an error.
    assert as_json(cargohold(data, "usage", "empty", "--json"))["stored_bytes"] == 0
    missing = cargohold(data, "usage", "team/nothing", code=1)
    assert "team/nothing is not known" in missing.stderr and not missing.stdout
    assert "invalid" in cargohold(data, "usage", "Team!", code=2).stderr


def test_quota_set_show_list_remove(data: Data) -> None:
    data.image("team/app", "v1", b"{}", b"l" * 2000)
    result = cargohold(data, "quota", "set", "team", "10GiB")
    assert "quota 10 GiB (10,737,418,240 bytes)" in result.stdout
    shown = as_json(cargohold(data, "quota", "show", "team", "--json"))
    assert shown["limit_bytes"] == 10 * 1024**3 and shown["usage_bytes"] == 2002
    assert shown["remaining_bytes"] == 10 * 1024**3 - 2002
    assert shown["updated_by"] == f"cli:{getpass.getuser()}"
    for text, limit in [("1.5KB", 1500), ("2048", 2048), ("1 MB", 10**6), ("3kib", 3072)]:
        assert as_json(cargohold(data, "quota", "set", "team", text, "--json"))["limit_bytes"] == (
            limit
        )
    over = cargohold(data, "quota", "set", "team", "1000")
    assert "over its quota" in over.stdout
    assert "namespace team: quota 1000 B" in cargohold(data, "quota", "show", "team").stdout
    cargohold(data, "quota", "set", "other", "1GB")
    listed = as_json(cargohold(data, "quota", "list", "--json"))["quotas"]
    assert [(q["namespace"], q["limit_bytes"]) for q in listed] == [
        ("other", 10**9),
        ("team", 1000),
    ]
    assert (
        "removed the quota of namespace team" in cargohold(data, "quota", "remove", "team").stdout
    )
    assert "has no quota" in cargohold(data, "quota", "show", "team", code=1).stderr
    assert "has no quota" in cargohold(data, "quota", "remove", "team", code=1).stderr
    actions = [event.action for event in AuditStore(data.stores.engine).query(target="team")]
    assert actions.count("quota_set") == 6 and actions.count("quota_remove") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("quota", "set", "team", "12XB"), "invalid size"),
        (("quota", "set", "team", "ten"), "invalid size"),
        (("quota", "set", "team", "99999999999PB"), "at most"),
        (("quota", "set", "team/app", "1GB"), "is a repository"),
        (("quota", "set", "Team", "1GB"), "invalid"),
        (("quota", "show", "a/b"), "is a repository"),
    ],
)
def test_invalid_input_is_refused_with_status_2(
    data: Data, args: tuple[str, ...], message: str
) -> None:
    result = cargohold(data, *args, code=2)
    assert message in result.stderr and not result.stdout
    assert data.stores.meta.list_quotas() == []


def test_sizes_parse_and_format() -> None:
    assert parse_size("0") == 0
    assert parse_size("10GiB") == 10 * 1024**3
    assert parse_size("10 gb") == 10 * 1000**3
    assert parse_size("1.25KiB") == 1280
    assert parse_size("512B") == 512
    for bad in ("", "-1", "1e9", "1.5.5GB", "GB", "10 G", "0x10"):
        with pytest.raises(ValueError):
            parse_size(bad)
    assert format_size(0) == "0 B"
    assert format_size(1023) == "1023 B"
    assert format_size(1024) == "1 KiB"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(10 * 1024**3) == "10 GiB"
    assert format_size(1024**6) == "1024 PiB"
