"""Applying layers: compression, whiteouts, opaque directories, links, streaming."""

from __future__ import annotations

import bz2
import io
import lzma
import tarfile

import pytest

from cargohold.scan import ImageFilesystem, ScanLimits, open_layer_stream
from cargohold.scan.layers import normalize_member_path

from .layerkit import (
    OCI_LAYER_TAR,
    OCI_LAYER_ZSTD,
    Blob,
    Layer,
    gz,
    sources,
)


def keep_all(_path: str) -> int:
    return 1 << 20


def build(*blobs: Blob, keep=keep_all, **kw) -> ImageFilesystem:
    return ImageFilesystem.from_layers(sources(*blobs), keep=keep, **kw)


def test_compression_formats_are_recognised_by_magic():
    layer = Layer().file("etc/hello", "hi")
    tar = layer.tar()
    blobs = [
        Blob(layer.gzip()),
        Blob(layer.zstd(), OCI_LAYER_ZSTD),
        Blob(tar, OCI_LAYER_TAR),
        Blob(bz2.compress(tar)),
        Blob(lzma.compress(tar)),
        # a media type that lies does not matter
        Blob(layer.zstd(), "application/vnd.oci.image.layer.v1.tar+gzip"),
    ]
    for blob in blobs:
        fs = build(blob)
        assert fs.read("etc/hello") == b"hi", blob.media_type
        assert not fs.warnings


def test_open_layer_stream_is_a_plain_tar_stream():
    layer = Layer().file("a", "1")
    stream = open_layer_stream(io.BytesIO(layer.zstd()))
    with tarfile.open(fileobj=stream, mode="r|") as tf:
        assert [m.name for m in tf] == ["a"]


def test_each_layer_is_read_once_and_content_kept_only_when_asked():
    base = gz(Layer().file("etc/keep", "yes").file("etc/skip", "no"))
    top = gz(Layer().file("etc/other", "x"))
    fs = build(base, top, keep=lambda p: 100 if p == "etc/keep" else None)
    assert (base.opens, top.opens) == (1, 1)
    assert fs.read("etc/keep") == b"yes"
    assert fs.read("etc/skip") is None
    assert fs.stat("etc/skip").size == 2
    assert fs.stat("etc/keep").layer_digest == base.digest
    assert fs.stat("etc/other").layer_index == 1


def test_later_layers_replace_files_and_record_their_layer():
    one = gz(Layer().file("etc/conf", "v1").file("etc/stay", "s"))
    two = gz(Layer().file("etc/conf", "v2"))
    fs = build(one, two)
    assert fs.read("etc/conf") == b"v2"
    assert fs.stat("etc/conf").layer_digest == two.digest
    assert fs.stat("etc/stay").layer_digest == one.digest
    assert [e.path for e in fs.iter_entries()] == ["etc/conf", "etc/stay"]


def test_whiteout_deletes_a_file_and_a_whole_directory_of_lower_layers():
    one = gz(
        Layer()
        .dir("usr/lib/pkg")
        .file("usr/lib/pkg/a.py", "a")
        .file("usr/lib/pkg/sub/b.py", "b")
        .file("etc/gone", "x")
        .file("etc/kept", "y")
    )
    two = gz(Layer().whiteout("usr/lib/pkg").whiteout("etc/gone"))
    fs = build(one, two)
    assert fs.stat("usr/lib/pkg") is None
    assert fs.stat("usr/lib/pkg/sub/b.py") is None
    assert fs.stat("etc/gone") is None
    assert fs.read("etc/kept") == b"y"
    assert len(fs) == 1  # etc/kept (etc and usr/lib are implicit directories)


def test_whiteout_applies_to_lower_layers_only():
    one = gz(Layer().file("etc/a", "old"))
    # same layer: the whiteout comes after the new file, but hides only the lower one
    two = gz(Layer().file("etc/a", "new").whiteout("etc/a"))
    fs = build(one, two)
    assert fs.read("etc/a") == b"new"


def test_opaque_directory_hides_lower_contents_but_keeps_its_own():
    one = gz(
        Layer()
        .file("usr/lib/python3/site-packages/old/__init__.py", "old")
        .file("usr/lib/python3/site-packages/shared.py", "lower")
        .file("usr/lib/python3/other.py", "beside")
    )
    two = gz(
        Layer()
        .dir("usr/lib/python3/site-packages")
        .file("usr/lib/python3/site-packages/new.py", "new")
        .opaque("usr/lib/python3/site-packages")
    )
    fs = build(one, two)
    assert fs.listdir("usr/lib/python3/site-packages") == ["new.py"]
    assert fs.read("usr/lib/python3/other.py") == b"beside"
    assert fs.stat("usr/lib/python3/site-packages").layer_index == 1


def test_directory_over_directory_merges_file_over_directory_replaces():
    one = gz(Layer().dir("opt/app").file("opt/app/x", "x").dir("srv/data").file("srv/data/y", "y"))
    two = gz(Layer().dir("opt/app", mode=0o700).file("srv/data", "now a file"))
    fs = build(one, two)
    assert fs.read("opt/app/x") == b"x"
    assert fs.stat("opt/app").mode == 0o700
    assert fs.read("srv/data") == b"now a file"
    assert fs.stat("srv/data/y") is None


def test_symlinks_resolve_inside_the_image_only():
    fs = build(
        gz(
            Layer()
            .file("usr/lib/os-release", "ID=debian\n")
            .symlink("etc/os-release", "../usr/lib/os-release")
            .symlink("etc/abs", "/usr/lib/os-release")
            .symlink("lib", "usr/lib")
            .symlink("etc/escape", "../../../../etc/shadow")
            .symlink("etc/escape-abs", "/../../usr/lib/os-release")
            .symlink("loop/a", "b")
            .symlink("loop/b", "a")
            .symlink("etc/dangling", "/nowhere")
        )
    )
    assert fs.read("etc/os-release") == b"ID=debian\n"
    assert fs.read("/etc/abs") == b"ID=debian\n"
    assert fs.read("lib/os-release") == b"ID=debian\n"
    assert fs.realpath("lib/os-release") == "usr/lib/os-release"
    assert fs.lstat("etc/os-release").kind == "symlink"
    for path in ("etc/escape", "etc/escape-abs", "loop/a", "etc/dangling", "../etc/passwd"):
        assert fs.stat(path) is None, path
        assert fs.read(path) is None, path
    assert fs.warnings["link-too-deep"] >= 1


def test_a_long_chain_of_links_stops_at_the_limit():
    layer = Layer().file("target", "t")
    layer.symlink("l0", "target")
    for i in range(1, 60):
        layer.symlink(f"l{i}", f"l{i - 1}")
    fs = build(gz(layer))
    assert fs.read("l30") == b"t"
    assert fs.read("l59") is None
    assert fs.warnings["link-too-deep"] >= 1


def test_link_content_is_read_in_a_second_pass_when_only_the_link_path_was_wanted():
    blob = gz(
        Layer().file("usr/share/data.txt", "payload").symlink("etc/wanted", "/usr/share/data.txt")
    )
    fs = build(blob, keep=lambda p: 100 if p == "etc/wanted" else None)
    # the member's own path was not wanted, so it was not kept on the first pass;
    # the symlink's path is: the layer is read once more for it
    assert fs.read("etc/wanted") == b"payload"
    assert blob.opens == 2
    hard = gz(
        Layer().file("usr/share/data.txt", "payload").hardlink("etc/wanted", "usr/share/data.txt")
    )
    fs = build(hard, keep=lambda p: 100 if p == "etc/wanted" else None)
    assert fs.read("etc/wanted") == b"payload"
    assert hard.opens == 2


def test_hardlinks_keep_the_data_of_their_target_even_if_it_is_later_replaced():
    one = gz(Layer().file("bin/tool", "v1", mode=0o755).hardlink("bin/alias", "bin/tool"))
    two = gz(Layer().file("bin/tool", "v2", mode=0o755))
    fs = build(one, two)
    assert fs.read("bin/alias") == b"v1"
    assert fs.read("bin/tool") == b"v2"
    assert fs.stat("bin/alias").is_executable


def test_member_names_are_normalized_and_escapes_refused():
    assert normalize_member_path("./usr/bin/x") == "usr/bin/x"
    assert normalize_member_path("/etc/passwd") == "etc/passwd"
    assert normalize_member_path("a/b/../c/") == "a/c"
    assert normalize_member_path("../../etc/passwd") is None
    assert normalize_member_path("a/../../b") is None


def test_traversal_names_do_not_land_anywhere():
    fs = build(
        gz(
            Layer()
            .file("../../etc/passwd", "root:x:0:0")
            .file("a/../../escaped", "x")
            .file("/etc/abs-name", "inside")
            .file("ok", "ok")
        )
    )
    assert fs.read("etc/passwd") is None
    assert fs.read("escaped") is None
    assert fs.read("etc/abs-name") == b"inside"
    assert fs.warnings["path-escapes-root"] == 2
    assert sorted(e.path for e in fs.iter_entries()) == ["etc/abs-name", "ok"]


def test_layer_entries_under_a_symlinked_directory_land_at_its_target():
    one = gz(Layer().dir("usr/lib").symlink("lib", "usr/lib"))
    two = gz(Layer().file("lib/apk/db/installed", "P:x\n"))
    fs = build(one, two)
    assert fs.lstat("usr/lib/apk/db/installed").layer_index == 1
    assert fs.read("lib/apk/db/installed") == b"P:x\n"
    assert fs.lstat("lib").kind == "symlink"


def test_history_records_versions_and_deletions():
    one = gz(Layer().file("var/db", "1"))
    two = gz(Layer().file("var/db", "2"))
    three = gz(Layer().whiteout("var/db"))
    four = gz(Layer().file("var/db", "4"))
    fs = build(one, two, three, four)
    hist = fs.history("var/db")
    assert [h.content if h else None for h in hist] == [b"1", b"2", None, b"4"]


def test_no_temporary_files_for_ordinary_layers(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    big = gz(Layer().file("usr/bin/tool", b"\x7fELF" + b"\0" * (3 << 20), mode=0o755))
    build(big)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("limit", [1 << 10, 1 << 16])
def test_kept_file_size_cap_truncates(limit):
    fs = build(gz(Layer().file("big", b"x" * (1 << 17))), limits=ScanLimits(max_kept_file=limit))
    entry = fs.stat("big")
    assert len(entry.content) == limit
    assert entry.content_truncated
    assert fs.warnings["kept-file-truncated"] == 1
