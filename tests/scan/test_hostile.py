"""Hostile and broken layers: skipped with a warning count, never an exception,
never a file outside the image."""

from __future__ import annotations

import gzip
import io
import random
import tarfile

import zstandard

from cargohold.scan import LayerSource, ScanLimits, build_inventory
from cargohold.scan.layers import ImageFilesystem

from .fixtures import alpine_layer
from .layerkit import OCI_LAYER_TAR, TAR_END, Blob, Layer, gz, raw_member, sources
from .test_dpkg import debian_layer

STATUS_PARA = "Package: hello\nStatus: install ok installed\nVersion: 2.10-3\nArchitecture: amd64\n"


def test_member_claiming_an_absurd_size_ends_the_layer_but_not_the_scan():
    data = raw_member("var/lib/dpkg/status", STATUS_PARA.encode()) + raw_member(
        "usr/lib/huge", b"x" * 100, size=10**15
    )
    broken = Blob(gzip.compress(data))
    fine = gz(Layer().file("etc/os-release", "ID=debian\nVERSION_ID=12\n"))
    inv = build_inventory(sources(broken, fine))
    assert [(p.name, p.version) for p in inv.packages] == [("hello", "2.10-3")]
    assert inv.warnings["layer-truncated-or-corrupt"] == 1
    assert inv.os is not None and inv.os.id == "debian"


def test_wanted_file_claiming_an_absurd_size_is_capped():
    data = raw_member("var/lib/dpkg/status", STATUS_PARA.encode() * 10, size=10**12)
    inv = build_inventory(sources(Blob(data, OCI_LAYER_TAR)))
    assert inv.warnings["layer-truncated-or-corrupt"] == 1
    assert inv.packages == [] or all(p.name == "hello" for p in inv.packages)


def test_decompression_bomb_stops_at_the_layer_limit():
    bomb = gzip.compress(raw_member("zeros", b"\0" * (8 << 20)) + TAR_END)
    assert len(bomb) < 100_000
    fs = ImageFilesystem.from_layers(
        sources(Blob(bomb)), limits=ScanLimits(max_layer_bytes=1 << 20)
    )
    assert fs.warnings["layer-too-large"] == 1


def test_forged_pax_header_size_is_refused_not_allocated():
    pax = raw_member("././@PaxHeader", b"", size=1 << 40, type=tarfile.XHDTYPE)
    inv = build_inventory(sources(Blob(gzip.compress(pax + b"\0" * 4096))))
    assert inv.warnings["layer-truncated-or-corrupt"] == 1


def test_garbage_blobs():
    tar = Layer().file("var/lib/dpkg/status", STATUS_PARA).tar()
    gzipped = gzip.compress(tar)
    zst = zstandard.ZstdCompressor().compress(tar)
    blobs = {
        "empty": b"",
        "random": random.Random(1).randbytes(5000),
        "gzip-header-then-garbage": gzipped[:10] + b"\x00garbage" * 100,
        "truncated-gzip": gzipped[: len(gzipped) // 2],
        "truncated-zstd": zst[: len(zst) // 2],
        "zstd-magic-then-garbage": b"\x28\xb5\x2f\xfd" + b"\xff" * 100,
        "xz-magic-then-garbage": b"\xfd7zXZ\x00" + b"\x01" * 100,
        "bzip2-magic-then-garbage": b"BZh9" + b"\x02" * 100,
        "tar-truncated-in-header": tar[:300],
    }
    for name, data in blobs.items():
        inv = build_inventory(sources(Blob(data)))
        assert sum(inv.warnings.values()) >= 1 or inv.packages == [], name


def test_bit_flipped_layers_never_raise():
    base = debian_layer()
    pristine = [base.gzip(), alpine_layer().tar(), alpine_layer().zstd()]
    rng = random.Random(20261130)
    for i in range(60):
        data = bytearray(pristine[i % len(pristine)])
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if i % 5 == 0:
            del data[rng.randrange(len(data)) :]
        build_inventory(sources(Blob(bytes(data))))


def test_opener_that_fails():
    def boom():
        raise OSError("blob store unavailable")

    ok = gz(alpine_layer())
    inv = build_inventory([LayerSource("sha256:bad", OCI_LAYER_TAR, boom), ok.source()])
    assert inv.warnings["layer-unreadable"] == 1
    assert len(inv.by_kind("apk")) == 15


def test_links_out_of_the_image_and_loops_give_nothing():
    layer = (
        Layer()
        .symlink("var/lib/dpkg/status", "../../../../../../etc/shadow")
        .symlink("lib/apk/db/installed", "/lib/apk/db/installed")  # itself: a loop
        .symlink("usr/lib/os-release", "/proc/self/root/etc/os-release")
        .symlink("etc/os-release", "../usr/lib/os-release")
        .symlink("a", "a/b")  # a parent that loops
        .symlink("usr/lib/python3/dist-packages", "../../../../../host/site-packages")
        .hardlink("etc/passwd-link", "../../etc/passwd")
        .hardlink("etc/missing-link", "etc/not-there")
    )
    fs = ImageFilesystem.from_layers(sources(gz(layer)), keep=lambda p: 1000)
    for path in (
        "var/lib/dpkg/status",
        "lib/apk/db/installed",
        "etc/os-release",
        "a/x",
        "usr/lib/python3/dist-packages/x.dist-info/METADATA",
    ):
        assert fs.stat(path) is None, path
        assert fs.read(path) is None, path
    assert fs.warnings["hardlink-escapes-root"] == 1
    assert fs.warnings["hardlink-target-missing"] == 1
    inv = build_inventory(sources(gz(layer)))
    assert inv.packages == [] and inv.os is None


def test_entries_below_a_symlink_that_leaves_the_image_are_dropped():
    one = gz(Layer().symlink("usr/share", "../../../../outside"))
    two = gz(Layer().file("usr/share/x", "x"))
    fs = ImageFilesystem.from_layers(sources(one, two))
    assert fs.warnings["unresolvable-parent"] == 1
    assert fs.stat("usr/share/x") is None


def test_entry_and_path_limits():
    layer = Layer()
    for i in range(50):
        layer.file(f"many/{i}", "")
    layer.file("deep/" + "d/" * 3000 + "f", "x")
    fs = ImageFilesystem.from_layers(
        sources(gz(layer)), limits=ScanLimits(max_entries=20, max_path_length=4096)
    )
    assert fs.warnings["too-many-entries"] == 1
    assert len(fs) <= 21
    fs = ImageFilesystem.from_layers(sources(gz(layer)))
    assert fs.warnings["path-too-long"] == 1
    assert len(fs) == 50


def test_whiteouts_that_make_no_sense():
    one = gz(Layer().file("etc/a", "a"))
    two = gz(
        Layer()
        .file("etc/.wh.", "")
        .file(".wh...", "")
        .file("etc/.wh..wh.plnk", "")
        .file("nowhere/.wh.x", "")
        .file("etc/a/.wh..wh..opq", "")  # opaque marker below a file
    )
    fs = ImageFilesystem.from_layers(sources(one, two), keep=lambda p: 10)
    assert fs.read("etc/a") == b"a"
    assert fs.warnings["bad-whiteout"] == 2


def test_a_detector_that_raises_is_counted():
    class Broken:
        name = "broken"
        analyzers = ()

        def keep(self, path):
            return None

        def detect(self, fs, os_info, warnings):
            raise RuntimeError("bug")

    from cargohold.scan.detectors import default_detectors

    inv = build_inventory(sources(gz(alpine_layer())), detectors=[Broken(), *default_detectors()])
    assert inv.warnings == {"detector-error:broken": 1}
    assert len(inv.by_kind("apk")) == 15


def test_kept_content_total_is_bounded():
    layer = Layer()
    for i in range(10):
        layer.file(f"var/lib/dpkg/status.d/p{i}", f"Package: p{i}\nVersion: 1\n" + "#" * 5000)
    inv = build_inventory(sources(gz(layer)), limits=ScanLimits(max_kept_total=20_000))
    assert 1 <= len(inv.packages) < 10
    assert inv.warnings["kept-content-limit"] >= 1


def test_stream_is_never_seeked():
    class OneWay(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, b):
            data = self._inner.read(len(b))
            b[: len(data)] = data
            return len(data)

    data = debian_layer().gzip()
    inv = build_inventory([LayerSource("sha256:x", OCI_LAYER_TAR, lambda: OneWay(data))])
    assert len(inv.by_kind("deb")) > 100
