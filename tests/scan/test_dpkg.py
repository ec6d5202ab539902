"""dpkg: this machine's real status file, distroless status.d, malformed input."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from cargohold.scan import build_inventory
from cargohold.scan.detectors.dpkg import parse_status

from .layerkit import Layer, gz, sources

STATUS = Path("/var/lib/dpkg/status")
OS_RELEASE = Path("/usr/lib/os-release")


def debian_layer() -> Layer:
    """A Debian-rootfs-like layer: this machine's real dpkg status and os-release,
    with /etc/os-release the relative symlink Debian ships."""
    return (
        Layer()
        .dir("etc")
        .dir("usr/lib")
        .host_file("usr/lib/os-release", OS_RELEASE)
        .symlink("etc/os-release", "../usr/lib/os-release")
        .dir("var/lib/dpkg")
        .host_file("var/lib/dpkg/status", STATUS)
    )


def dpkg_query() -> set[tuple[str, str]]:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Version}\\n"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {tuple(line.split(" ", 1)) for line in out.splitlines() if line}


def test_real_debian_status_gives_exactly_what_dpkg_query_lists():
    blob = gz(debian_layer())
    started = time.perf_counter()
    inv = build_inventory(sources(blob))
    elapsed = time.perf_counter() - started
    expected = dpkg_query()
    assert len(expected) > 100
    debs = inv.by_kind("deb")
    assert {(p.name, p.version) for p in debs} == expected
    assert len(debs) == len(expected)
    assert inv.os is not None and inv.os.id == "debian" and inv.os.version_id == "12"
    assert inv.os.pretty_name == "Debian GNU/Linux 12 (bookworm)"
    assert inv.counts == {"Debian:12": len(expected)}
    assert not inv.warnings
    assert all(p.layer_digest == blob.digest and p.layer_index == 0 for p in debs)
    assert all(p.path == "/var/lib/dpkg/status" for p in debs)
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], check=True, capture_output=True, text=True
    ).stdout.strip()
    libc = next(p for p in debs if p.name == "libc6")
    assert libc.source_name == "glibc"
    assert libc.purl == (
        f"pkg:deb/debian/libc6@{libc.version.replace('+', '%2B')}?arch={arch}&distro=debian-12"
    )
    print(f"\ninventory of the Debian status layer: {elapsed * 1000:.1f} ms, {len(debs)} packages")
    assert elapsed < 10


def test_source_packages_follow_dpkg_query():
    inv = build_inventory(sources(gz(debian_layer())))
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${source:Package} ${source:Version}\\n"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    expected = {tuple(line.split(" ")) for line in out.splitlines() if line}
    got = {(p.name, p.source_name, p.source_version) for p in inv.by_kind("deb")}
    assert got == expected


def test_distroless_status_d():
    layer = (
        Layer()
        .file("etc/os-release", 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Distroless"\n')
        .file(
            "var/lib/dpkg/status.d/base-files",
            "Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n"
            "Maintainer: Santiago Vila <sanvila@debian.org>\n",
        )
        .file("var/lib/dpkg/status.d/base-files.md5sums", "d41d8cd98f00b204e9800998ecf8427e  x\n")
        .file(
            "var/lib/dpkg/status.d/libssl3",
            "Package: libssl3\nSource: openssl\nVersion: 3.0.11-1~deb12u2\n"
            "Architecture: amd64\nDescription: Secure Sockets Layer toolkit\n"
            " This package is part of the OpenSSL project.\n",
        )
        .file(
            "var/lib/dpkg/status.d/tzdata",
            "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n",
        )
    )
    inv = build_inventory(sources(gz(layer)))
    got = {(p.name, p.version, p.source_name, p.source_version, p.path) for p in inv.packages}
    assert got == {
        (
            "base-files",
            "12.4+deb12u5",
            "base-files",
            "12.4+deb12u5",
            "/var/lib/dpkg/status.d/base-files",
        ),
        (
            "libssl3",
            "3.0.11-1~deb12u2",
            "openssl",
            "3.0.11-1~deb12u2",
            "/var/lib/dpkg/status.d/libssl3",
        ),
        ("tzdata", "2024a-0+deb12u1", "tzdata", "2024a-0+deb12u1", "/var/lib/dpkg/status.d/tzdata"),
    }
    ssl = next(p for p in inv.packages if p.name == "libssl3")
    assert ssl.purl == "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12"
    assert ssl.ecosystem == "Debian:12"


def test_packages_keep_the_layer_that_brought_them():
    base = "".join(
        f"Package: {n}\nStatus: install ok installed\nVersion: {v}\nArchitecture: amd64\n\n"
        for n, v in [("libc6", "2.36-9"), ("zlib1g", "1:1.2.13.dfsg-1")]
    )
    upgraded = "".join(
        f"Package: {n}\nStatus: install ok installed\nVersion: {v}\nArchitecture: amd64\n\n"
        for n, v in [("libc6", "2.36-9"), ("zlib1g", "1:1.2.13.dfsg-2"), ("curl", "7.88.1-10")]
    )
    one = gz(Layer().file("var/lib/dpkg/status", base))
    two = gz(Layer().file("etc/motd", "hi"))
    three = gz(Layer().file("var/lib/dpkg/status", upgraded))
    inv = build_inventory(sources(one, two, three))
    where = {p.name: (p.version, p.layer_index, p.layer_digest) for p in inv.packages}
    assert where == {
        "libc6": ("2.36-9", 0, one.digest),
        "zlib1g": ("1:1.2.13.dfsg-2", 2, three.digest),
        "curl": ("7.88.1-10", 2, three.digest),
    }


def test_states_and_malformed_paragraphs():
    text = (
        "Package: ok\nStatus: install ok installed\nVersion: 1.0\n\n"
        "Package: removed\nStatus: deinstall ok config-files\nVersion: 2.0\n\n"
        "Package: half\nStatus: install reinstreq half-installed\nVersion: 3.0\n\n"
        "Package: noversion\nStatus: install ok installed\n\n"
        "Version: 4.0\n\n"
        "\x00\xff garbage line\nPackage: bad name\nVersion: 1\n\n"
        "Package: src\nSource: upstream (9.9-1)\nVersion: 1.0+b1\n\n"
        "Package: badsrc\nSource: (\nVersion: 1\n\n"
    )
    from cargohold.scan.model import Warnings

    w = Warnings()
    records = parse_status(text, w)
    assert [(r.name, r.version) for r in records] == [
        ("ok", "1.0"),
        ("half", "3.0"),
        ("src", "1.0+b1"),
    ]
    assert (records[2].source_name, records[2].source_version) == ("upstream", "9.9-1")
    assert w["dpkg-malformed"] == 4


def test_binary_garbage_status_does_not_crash():
    layer = Layer().file("var/lib/dpkg/status", bytes(range(256)) * 1000)
    inv = build_inventory(sources(gz(layer)))
    assert inv.packages == []


def test_distroless_package_whited_out_in_an_upper_layer_is_not_reported():
    one = gz(
        Layer()
        .file("var/lib/dpkg/status.d/libssl3", "Package: libssl3\nVersion: 3.0.11-1\n")
        .file("var/lib/dpkg/status.d/zlib1g", "Package: zlib1g\nVersion: 1:1.2.13-1\n")
    )
    two = gz(Layer().whiteout("var/lib/dpkg/status.d/libssl3"))
    inv = build_inventory(sources(one, two))
    assert [(p.name, p.layer_index) for p in inv.packages] == [("zlib1g", 0)]
    assert inv.packages[0].ecosystem == "Debian"  # no os-release: no release number
