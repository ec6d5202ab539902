"""Hand-written package databases in the real formats, shared by the tests."""

from __future__ import annotations

from .layerkit import Layer

ALPINE_OS_RELEASE = """NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.19.1
PRETTY_NAME="Alpine Linux v3.19"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
"""

# (name, version, origin), as `apk info -v` on alpine:3.19 would list them
ALPINE_PACKAGES = [
    ("alpine-baselayout", "3.4.3-r2", "alpine-baselayout"),
    ("alpine-baselayout-data", "3.4.3-r2", "alpine-baselayout"),
    ("alpine-keys", "2.4-r1", "alpine-keys"),
    ("apk-tools", "2.14.0-r5", "apk-tools"),
    ("busybox", "1.36.1-r15", "busybox"),
    ("busybox-binsh", "1.36.1-r15", "busybox"),
    ("ca-certificates-bundle", "20230506-r0", "ca-certificates"),
    ("libc-utils", "0.7.2-r5", "libc-dev"),
    ("libcrypto3", "3.1.4-r5", "openssl"),
    ("libssl3", "3.1.4-r5", "openssl"),
    ("musl", "1.2.4_git20230717-r4", "musl"),
    ("musl-utils", "1.2.4_git20230717-r4", "musl"),
    ("scanelf", "1.3.7-r2", "pax-utils"),
    ("ssl_client", "1.36.1-r15", "busybox"),
    ("zlib", "1.3.1-r0", "zlib"),
]


def apk_installed(packages=ALPINE_PACKAGES) -> str:
    """An /lib/apk/db/installed in apk-tools' format: one paragraph per package."""
    paras = []
    for i, (name, version, origin) in enumerate(packages):
        paras.append(
            f"C:Q1{'A' * 26}{i:02d}=\n"
            f"P:{name}\n"
            f"V:{version}\n"
            "A:x86_64\n"
            f"S:{1000 + i}\n"
            f"I:{4096 + i}\n"
            f"T:{name} package\n"
            "U:https://alpinelinux.org\n"
            "L:MIT\n"
            f"o:{origin}\n"
            "m:Natanael Copa <ncopa@alpinelinux.org>\n"
            "t:1705063245\n"
            "c:ca7f2ab5e88794e4e654b40776f8a92256f50639\n"
            "D:so:libc.musl-x86_64.so.1\n"
            f"p:cmd:{name}={version}\n"
            "F:usr/share/doc\n"
            f"R:{name}.txt\n"
            "a:0:0:644\n"
            "Z:Q1hdUkGbwZ6fBQLsxnDF28WDQR+eU=\n"
        )
    return "\n".join(paras) + "\n"


def alpine_layer() -> Layer:
    return (
        Layer()
        .dir("etc")
        .dir("usr/lib")
        .file("usr/lib/os-release", ALPINE_OS_RELEASE)
        .symlink("etc/os-release", "../usr/lib/os-release")
        .file("etc/alpine-release", "3.19.1\n")
        .dir("lib/apk/db")
        .file("lib/apk/db/installed", apk_installed())
    )


def dist_info(
    site: str, name: str, version: str, dirname: str | None = None
) -> list[tuple[str, str]]:
    """Files of an installed wheel: METADATA (with a long description), RECORD."""
    d = f"{site}/{dirname or name.replace('-', '_')}-{version}.dist-info"
    metadata = (
        "Metadata-Version: 2.1\n"
        f"Name: {name}\n"
        f"Version: {version}\n"
        "Summary: test distribution\n"
        "Requires-Dist: MarkupSafe>=2.0\n"
        "Description-Content-Type: text/markdown\n"
        "\n"
        f"# {name}\n\nVersion: not-a-header\nName: also-not-a-header\n"
    )
    return [
        (f"{d}/METADATA", metadata),
        (f"{d}/RECORD", f"{name}/__init__.py,,\n"),
        (f"{d}/INSTALLER", "pip\n"),
    ]


def egg_info_dir(site: str, name: str, version: str) -> list[tuple[str, str]]:
    d = f"{site}/{name}-{version}-py3.11.egg-info"
    return [
        (f"{d}/PKG-INFO", f"Metadata-Version: 1.2\nName: {name}\nVersion: {version}\n"),
        (f"{d}/top_level.txt", f"{name}\n"),
    ]


def egg_info_file(site: str, name: str, version: str) -> list[tuple[str, str]]:
    return [
        (
            f"{site}/{name}-{version}.egg-info",
            f"Metadata-Version: 1.0\nName: {name}\nVersion: {version}\nSummary: old style\n",
        )
    ]


def add_files(layer: Layer, files: list[tuple[str, str]]) -> Layer:
    for path, content in files:
        layer.file(path, content)
    return layer
