"""apk, Python and npm detectors on layers made here."""

from __future__ import annotations

import json

from cargohold.scan import build_inventory
from cargohold.scan.detectors.apk import parse_installed
from cargohold.scan.model import Warnings

from .fixtures import (
    ALPINE_PACKAGES,
    add_files,
    alpine_layer,
    dist_info,
    egg_info_dir,
    egg_info_file,
)
from .layerkit import Layer, gz, sources

SITE = "usr/lib/python3.11/site-packages"


def test_alpine_installed_db():
    blob = gz(alpine_layer())
    inv = build_inventory(sources(blob))
    assert inv.os is not None and (inv.os.id, inv.os.version_id) == ("alpine", "3.19.1")
    apks = inv.by_kind("apk")
    assert {(p.name, p.version, p.source_name) for p in apks} == set(ALPINE_PACKAGES)
    assert {p.ecosystem for p in apks} == {"Alpine:v3.19"}
    busybox = next(p for p in apks if p.name == "busybox")
    assert busybox.purl == "pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64&distro=alpine-3.19"
    assert busybox.layer_digest == blob.digest
    assert busybox.path == "/lib/apk/db/installed"
    assert not inv.warnings


def test_apk_malformed_lines_are_counted():
    w = Warnings()
    text = "P:ok\nV:1-r0\nthis is not a field\n\nP:noversion\n\nV:1\n\nP:a b\nV:1\n"
    records = parse_installed(text, w)
    assert [(r.name, r.version) for r in records] == [("ok", "1-r0")]
    assert w["apk-malformed-line"] == 1
    assert w["apk-malformed"] == 3


def test_python_dist_info_and_egg_info():
    layer = Layer()
    add_files(layer, dist_info(SITE, "Jinja2", "3.1.2", dirname="jinja2"))
    add_files(layer, dist_info(SITE, "MarkupSafe", "2.1.3", dirname="MarkupSafe"))
    add_files(layer, dist_info("opt/venv/lib/python3.11/site-packages", "zope.interface", "6.1"))
    add_files(layer, egg_info_dir("usr/lib/python3/dist-packages", "six", "1.16.0"))
    add_files(layer, egg_info_file("usr/lib/python3/dist-packages", "chardet", "5.1.0"))
    blob = gz(layer)
    inv = build_inventory(sources(blob))
    pys = inv.by_kind("python")
    got = {(p.name, p.version, p.purl, p.ecosystem) for p in pys}
    assert got == {
        ("Jinja2", "3.1.2", "pkg:pypi/jinja2@3.1.2", "PyPI"),
        ("MarkupSafe", "2.1.3", "pkg:pypi/markupsafe@2.1.3", "PyPI"),
        ("zope.interface", "6.1", "pkg:pypi/zope-interface@6.1", "PyPI"),
        ("six", "1.16.0", "pkg:pypi/six@1.16.0", "PyPI"),
        ("chardet", "5.1.0", "pkg:pypi/chardet@5.1.0", "PyPI"),
    }
    jinja = next(p for p in pys if p.name == "Jinja2")
    assert jinja.path == f"/{SITE}/jinja2-3.1.2.dist-info/METADATA"
    assert jinja.layer_digest == blob.digest


def test_python_package_deleted_in_upper_layer_is_not_reported():
    one = Layer()
    add_files(one, dist_info(SITE, "requests", "2.31.0"))
    add_files(one, dist_info(SITE, "urllib3", "2.0.7"))
    two = Layer().whiteout(f"{SITE}/requests-2.31.0.dist-info").whiteout(f"{SITE}/requests")
    inv = build_inventory(sources(gz(one), gz(two)))
    assert {p.name for p in inv.by_kind("python")} == {"urllib3"}


def test_opaque_site_packages_hides_lower_layer_packages():
    one = Layer()
    add_files(one, dist_info(SITE, "flask", "2.0.0"))
    add_files(one, dist_info(SITE, "werkzeug", "2.0.0"))
    two = Layer().dir(SITE).opaque(SITE)
    add_files(two, dist_info(SITE, "flask", "3.0.0"))
    first, second = gz(one), gz(two)
    inv = build_inventory(sources(first, second))
    pys = inv.by_kind("python")
    assert {(p.name, p.version) for p in pys} == {("flask", "3.0.0")}
    assert pys[0].layer_digest == second.digest


def test_huge_metadata_headers_still_read_or_skipped_with_a_warning():
    site = SITE
    big_description = "Name: x\n" + "lorem ipsum " * 2_000_000  # ~24 MB body
    layer = Layer().file(
        f"{site}/big-1.0.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: big\nVersion: 1.0\n\n" + big_description,
    )
    layer.file(
        f"{site}/endless-1.0.dist-info/METADATA",
        "Metadata-Version: 2.1\n" + "Classifier: x\n" * 100_000 + "Name: endless\nVersion: 1\n",
    )
    layer.file(f"{site}/empty-1.0.dist-info/METADATA", "")
    layer.file(f"{site}/binary-1.0.dist-info/METADATA", bytes(range(256)) * 10)
    inv = build_inventory(sources(gz(layer)))
    assert {(p.name, p.version) for p in inv.by_kind("python")} == {("big", "1.0")}
    assert inv.warnings["python-metadata-too-large"] == 1
    assert inv.warnings["python-metadata-malformed"] == 2


def test_node_modules_nested_and_scoped():
    def pj(name, version, **extra):
        return json.dumps({"name": name, "version": version, **extra})

    layer = (
        Layer()
        .file("app/package.json", pj("my-app", "1.0.0"))  # the app itself: not a dependency
        .file("app/node_modules/express/package.json", pj("express", "4.18.2"))
        .file("app/node_modules/express/lib/package.json", json.dumps({"type": "commonjs"}))
        .file(
            "app/node_modules/express/node_modules/debug/package.json",
            pj("debug", "2.6.9"),
        )
        .file("app/node_modules/@babel/core/package.json", pj("@babel/core", "7.23.0"))
        .file("app/node_modules/broken/package.json", "{not json")
        .file("app/node_modules/deep/package.json", "[" * 100_000 + "]" * 100_000)
        .file("usr/lib/node_modules/npm/package.json", pj("npm", "10.2.4"))
    )
    inv = build_inventory(sources(gz(layer)))
    npms = inv.by_kind("npm")
    got = {(p.name, p.version, p.purl, p.path) for p in npms}
    assert got == {
        ("express", "4.18.2", "pkg:npm/express@4.18.2", "/app/node_modules/express/package.json"),
        (
            "debug",
            "2.6.9",
            "pkg:npm/debug@2.6.9",
            "/app/node_modules/express/node_modules/debug/package.json",
        ),
        (
            "@babel/core",
            "7.23.0",
            "pkg:npm/%40babel/core@7.23.0",
            "/app/node_modules/@babel/core/package.json",
        ),
        ("npm", "10.2.4", "pkg:npm/npm@10.2.4", "/usr/lib/node_modules/npm/package.json"),
    }
    assert {p.ecosystem for p in npms} == {"npm"}
    assert inv.warnings["npm-package-json-malformed"] == 2
