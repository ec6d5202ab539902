"""The distribution of an image, from os-release (os-release(5))."""

from __future__ import annotations

import re

from cargohold.scan.layers import ImageFilesystem
from cargohold.scan.model import OSInfo

OS_RELEASE_PATHS = ("etc/os-release", "usr/lib/os-release")
MAX_OS_RELEASE = 64 << 10

_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_ESCAPES = {'"': '"', "\\": "\\", "$": "$", "`": "`"}


def _unquote(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        body = raw[1:-1]
        if raw[0] == "'":
            return body
        out: list[str] = []
        i = 0
        while i < len(body):
            ch = body[i]
            if ch == "\\" and i + 1 < len(body) and body[i + 1] in _ESCAPES:
                out.append(body[i + 1])
                i += 2
                continue
            out.append(ch)
            i += 1
        return "".join(out)
    return raw


def parse_os_release(text: str) -> dict[str, str]:
    """The KEY=value assignments of an os-release file (quotes and escapes removed;
    comments, blank and malformed lines ignored)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m:
            values[m.group(1)] = _unquote(m.group(2))
    return values


def os_info_from_release(values: dict[str, str]) -> OSInfo | None:
    os_id = values.get("ID", "").strip().lower()
    if not os_id:
        return None
    return OSInfo(
        id=os_id,
        version_id=values.get("VERSION_ID") or None,
        pretty_name=values.get("PRETTY_NAME") or None,
        version_codename=values.get("VERSION_CODENAME") or None,
        id_like=tuple(values.get("ID_LIKE", "").lower().split()),
    )


def detect_os(fs: ImageFilesystem) -> OSInfo | None:
    """Read /etc/os-release, else /usr/lib/os-release (links followed inside the image)."""
    for path in OS_RELEASE_PATHS:
        data = fs.read(path)
        if data is None:
            continue
        info = os_info_from_release(parse_os_release(data.decode("utf-8", "replace")))
        if info is not None:
            return info
    return None


def keep_os_release(path: str) -> int | None:
    return MAX_OS_RELEASE if path in OS_RELEASE_PATHS else None


_MAJOR_MINOR = re.compile(r"^(\d+)\.(\d+)")


def distro_ecosystem(os_info: OSInfo | None, family: str) -> tuple[str, str, str | None]:
    """OSV ecosystem, purl namespace and purl ``distro`` qualifier for packages of a
    distribution ``family`` ("debian" or "alpine") found in an image with ``os_info``.

    Debian: ("Debian:12", "debian", "debian-12"); Ubuntu: ("Ubuntu:22.04:LTS", "ubuntu",
    "ubuntu-22.04"); Alpine: ("Alpine:v3.19", "alpine", "alpine-3.19"). Without a
    version (Debian sid, no os-release) the ecosystem is the bare name.
    """
    os_id = os_info.id if os_info is not None else family
    version = (os_info.version_id if os_info is not None else None) or None
    if family == "alpine" or os_id == "alpine":
        mm = _MAJOR_MINOR.match(version or "")
        if mm:
            short = f"{mm.group(1)}.{mm.group(2)}"
            return f"Alpine:v{short}", "alpine", f"alpine-{short}"
        return "Alpine", "alpine", None
    if os_id == "ubuntu":
        if version:
            lts = ":LTS" if os_info is not None and _is_lts(os_info) else ""
            return f"Ubuntu:{version}{lts}", "ubuntu", f"ubuntu-{version}"
        return "Ubuntu", "ubuntu", None
    if os_id == "debian":
        if version:
            return f"Debian:{version}", "debian", f"debian-{version}"
        return "Debian", "debian", None
    # A derivative (ID_LIKE=debian ...) or no os-release: name it as itself.
    name = os_id.capitalize() if os_id else family.capitalize()
    namespace = os_id or family
    if version:
        return f"{name}:{version}", namespace, f"{namespace}-{version}"
    return name, namespace, None


def _is_lts(os_info: OSInfo) -> bool:
    return "LTS" in (os_info.pretty_name or "")
