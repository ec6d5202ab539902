"""Byte sizes for people: "10GiB" in, "9.8 MiB" out. Exact byte counts stay in JSON."""

from __future__ import annotations

import re

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "pb": 1000**5,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "pib": 1024**5,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
MAX_BYTES = 2**63 - 1  # what a BIGINT column holds


def parse_size(text: str) -> int:
    """Bytes of "1048576", "500MB", "1.5 GiB" (KB/MB/GB/TB are powers of 1000, KiB/MiB/
    GiB/TiB of 1024; case does not matter). ValueError, saying what is accepted, otherwise."""
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(
            f"invalid size {text[:40]!r}: use bytes or a number with a unit, for example "
            "10GiB, 500MB or 1073741824 (KB, MB, GB, TB are powers of 1000; KiB, MiB, "
            "GiB, TiB of 1024)"
        )
    number = match.group(1)
    if "." in number:
        whole, fraction = number.split(".")
        value = int(whole) * _UNITS[unit] + int(fraction) * _UNITS[unit] // 10 ** len(fraction)
    else:
        value = int(number) * _UNITS[unit]
    if value > MAX_BYTES:
        raise ValueError(f"invalid size {text[:40]!r}: at most {MAX_BYTES} bytes")
    return value


def format_size(value: int) -> str:
    """1536 -> "1.5 KiB"; below 1 KiB the exact count ("512 B")."""
    if value < 1024:
        return f"{value} B"
    amount = float(value)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        amount /= 1024
        if amount < 1024 or unit == "PiB":
            break
    text = f"{amount:.1f}".removesuffix(".0")
    return f"{text} {unit}"
