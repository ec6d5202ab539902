"""`cargohold diff` and diff_images: layers, packages and vulnerabilities between two images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cargohold.core.registry import Registry
from cargohold.scan.diff import DiffError, diff_images
from cargohold.stores import Stores
from cargohold.vulndb.osv import parse_record
from cargohold.vulndb.store import AdvisoryStore

from .fixtures import add_files, dist_info
from .layerkit import OCI_LAYER_GZIP, Layer
from .test_service import (
    DEBIAN_OS_RELEASE,
    OCI_INDEX,
    SITE,
    _deb,
    cargohold,
    osv,
    push_image,
    push_manifest,
)

VENV_SITE = "opt/venv/lib/python3.11/site-packages"

BASE = (
    Layer()
    .dir("etc")
    .dir("usr/lib")
    .file("usr/lib/os-release", DEBIAN_OS_RELEASE)
    .symlink("etc/os-release", "../usr/lib/os-release")
    .gzip()
)


def dpkg_layer(*packages: tuple[str, str]) -> bytes:
    status = "\n".join(_deb(name, version) for name, version in packages)
    return Layer().dir("var/lib/dpkg").file("var/lib/dpkg/status", status).gzip()


def python_layer(*files: tuple[str, str, str]) -> bytes:
    layer = Layer()
    for site, name, version in files:
        add_files(layer, dist_info(site, name, version))
    return layer.gzip()


OLD_DPKG = dpkg_layer(
    ("openssl", "3.0.11-1~deb12u2"),  # upgraded: fixes TEST-DEB12-SSL1
    ("curl", "7.88.1-10+deb12u5"),  # downgraded: introduces TEST-DEB12-CUR1
    ("bash", "5.2.15-2+b2"),  # unchanged, affected by TEST-DEB12-BSH1 on both sides
    ("telnet", "0.17+2.4-2"),  # removed
)
NEW_DPKG = dpkg_layer(
    ("openssl", "3.0.15-1~deb12u1"),
    ("curl", "7.88.1-10+deb12u4"),
    ("bash", "5.2.15-2+b2"),
    ("wget", "1.21.3-1+b2"),  # added: introduces TEST-DEB12-WGT1
)
OLD_PYTHON = python_layer((SITE, "six", "1.16.0"))
NEW_PYTHON = python_layer((SITE, "six", "1.16.0"), (VENV_SITE, "six", "1.15.0"))

ADVISORIES = [
    osv("TEST-DEB12-SSL1", "Debian:12", "openssl", "3.0.15-1~deb12u1"),
    osv("TEST-DEB12-CUR1", "Debian:12", "curl", "7.88.1-10+deb12u5"),
    osv("TEST-DEB12-BSH1", "Debian:12", "bash", "5.2.15-3"),
    osv("TEST-DEB12-WGT1", "Debian:12", "wget", "1.21.3-2"),
    osv("TEST-DEB12-TEL1", "Debian:12", "telnet", "0.17+2.4-1"),  # never affected
]


def _push_pair(registry: Registry, repository: str = "team/app") -> tuple[str, str]:
    old = push_image(
        registry,
        repository,
        "1.0",
        [(BASE, OCI_LAYER_GZIP), (OLD_DPKG, OCI_LAYER_GZIP), (OLD_PYTHON, OCI_LAYER_GZIP)],
    )
    new = push_image(
        registry,
        repository,
        "1.1",
        [(BASE, OCI_LAYER_GZIP), (NEW_DPKG, OCI_LAYER_GZIP), (NEW_PYTHON, OCI_LAYER_GZIP)],
    )
    return old, new


def _digest(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def _packages(data: dict) -> dict[str, list[tuple]]:
    return {
        change: [(p["ecosystem"], p["name"], p["from"], p["to"]) for p in entries]
        for change, entries in data["packages"].items()
        if change != "unchanged"
    }


def _vulns(entries: list[dict]) -> list[tuple]:
    return [(f["advisory"], f["package"], f["installed_version"]) for f in entries]


EXPECTED_PACKAGES = {
    "upgraded": [("Debian:12", "openssl", ["3.0.11-1~deb12u2"], ["3.0.15-1~deb12u1"])],
    "downgraded": [("Debian:12", "curl", ["7.88.1-10+deb12u5"], ["7.88.1-10+deb12u4"])],
    # A second, older six beside the first: the highest version stays, so "changed".
    "changed": [("PyPI", "six", ["1.16.0"], ["1.15.0", "1.16.0"])],
    "added": [("Debian:12", "wget", [], ["1.21.3-1+b2"])],
    "removed": [("Debian:12", "telnet", ["0.17+2.4-2"], [])],
}


def check_diff(data: dict, old: str, new: str) -> None:
    assert data["from"]["image_digest"] == old and data["to"]["image_digest"] == new
    assert data["from"]["platform"] == data["to"]["platform"] == "linux/amd64"
    assert data["layers"] == {
        "added": [_digest(NEW_DPKG), _digest(NEW_PYTHON)],
        "removed": [_digest(OLD_DPKG), _digest(OLD_PYTHON)],
        "common": 1,
    }
    assert _packages(data) == EXPECTED_PACKAGES
    assert data["packages"]["unchanged"] == 1  # bash
    [six] = data["packages"]["changed"]
    assert "several versions" in six["note"]
    assert _vulns(data["vulnerabilities"]["fixed"]) == [
        ("TEST-DEB12-SSL1", "openssl", "3.0.11-1~deb12u2")
    ]
    assert sorted(_vulns(data["vulnerabilities"]["introduced"])) == [
        ("TEST-DEB12-CUR1", "curl", "7.88.1-10+deb12u4"),
        ("TEST-DEB12-WGT1", "wget", "1.21.3-1+b2"),
    ]
    assert data["vulnerabilities"]["unchanged"] == 1  # bash's
    assert data["from"]["vulnerability_total"] == 2 and data["to"]["vulnerability_total"] == 3


def test_diff_two_images_library_and_cli(registry: Registry, stores: Stores, data_dir: Path):
    AdvisoryStore(stores.engine).save([(parse_record(r), json.dumps(r)) for r in ADVISORIES])
    old, new = _push_pair(registry)

    diff = diff_images(
        registry, AdvisoryStore(stores.engine), ("team/app", "1.0"), ("team/app", "1.1")
    )
    data = diff.to_dict()
    check_diff(data, old, new)
    assert data["platform"] is None and data["notes"] == []

    # Backwards (a rollback): everything swaps.
    back = diff_images(
        registry,
        AdvisoryStore(stores.engine),
        ("team/app", "1.1"),
        ("team/app", f"sha256:{old[7:]}"),
    ).to_dict()
    assert [p["name"] for p in back["packages"]["downgraded"]] == ["openssl"]
    assert [p["name"] for p in back["packages"]["upgraded"]] == ["curl"]
    assert [p["name"] for p in back["packages"]["removed"]] == ["wget"]
    assert [p["name"] for p in back["packages"]["added"]] == ["telnet"]
    assert [f["advisory"] for f in back["vulnerabilities"]["introduced"]] == ["TEST-DEB12-SSL1"]
    stores.close()

    cli = json.loads(cargohold(data_dir, "diff", "team/app:1.0", "team/app:1.1", "--json").stdout)
    assert cli == data

    table = cargohold(data_dir, "diff", "team/app:1.0", "team/app:1.1").stdout
    for text in (
        "upgraded",
        "downgraded",
        "TEST-DEB12-SSL1",
        "TEST-DEB12-WGT1",
        "3.0.15-1~deb12u1",
    ):
        assert text in table
    missing = cargohold(data_dir, "diff", "team/app:1.0", "team/app:9.9", code=1)
    assert "9.9" in missing.stderr and "Traceback" not in missing.stderr


def _index(registry: Registry, repository: str, tag: str, children: dict[str, str]) -> str:
    manifests = []
    for platform, digest in children.items():
        os_name, arch = platform.split("/")
        size = len(registry.manifests.get(repository, digest).content)
        manifests.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": size,
                "platform": {"os": os_name, "architecture": arch},
            }
        )
    return push_manifest(
        registry,
        repository,
        tag,
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests},
    )


def test_indexes_are_diffed_on_one_platform(registry: Registry, stores: Stores):
    advisories = AdvisoryStore(stores.engine)
    advisories.save([(parse_record(r), json.dumps(r)) for r in ADVISORIES])
    old, new = _push_pair(registry)
    arm_old = push_image(registry, "team/app", None, [(BASE, OCI_LAYER_GZIP)], arch="arm64")
    arm_new = push_image(
        registry, "team/app", None, [(BASE, OCI_LAYER_GZIP), (NEW_DPKG, OCI_LAYER_GZIP)], "arm64"
    )
    _index(registry, "team/app", "multi-1.0", {"linux/arm64": arm_old, "linux/amd64": old})
    _index(registry, "team/app", "multi-1.1", {"linux/amd64": new, "linux/arm64": arm_new})

    amd = diff_images(registry, advisories, ("team/app", "multi-1.0"), ("team/app", "multi-1.1"))
    data = amd.to_dict()
    assert data["platform"] == "linux/amd64"
    assert "linux/amd64" in data["notes"][0]
    check_diff(data, old, new)

    arm = diff_images(
        registry, advisories, ("team/app", "multi-1.0"), ("team/app", "multi-1.1"), "linux/arm64"
    )
    assert (arm.left.image_digest, arm.right.image_digest) == (arm_old, arm_new)
    assert [p.name for p in arm.packages_by_change("added")] == ["bash", "curl", "openssl", "wget"]
    assert arm.layers_added == [_digest(NEW_DPKG)] and arm.layers_common == 1

    # An index against a single image: the index's image of that platform.
    single = diff_images(registry, advisories, ("team/app", "multi-1.0"), ("team/app", "1.1"))
    check_diff(single.to_dict(), old, new)

    with pytest.raises(DiffError, match="no linux/s390x image"):
        diff_images(
            registry,
            advisories,
            ("team/app", "multi-1.0"),
            ("team/app", "multi-1.1"),
            "linux/s390x",
        )
