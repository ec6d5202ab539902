"""Hand-made ELF files carrying Go build info, in both formats, for the tests.

Written from the format description (header, pointer size, flags, then either inline
varint strings or pointers to Go string headers), independently of the reader.
"""

from __future__ import annotations

import struct

MAGIC = b"\xff Go buildinf:"
INFO_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
INFO_END = bytes.fromhex("f932433186182072008242104116d8f2")
PAGE = 0x1000


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def modinfo_text(
    path: str, main: tuple[str, str], deps: list[tuple[str, str]], extra: str = ""
) -> str:
    lines = [f"path\t{path}", f"mod\t{main[0]}\t{main[1]}\t"]
    lines += [f"dep\t{p}\t{v}\th1:{'x' * 43}=" for p, v in deps]
    return "\n".join(lines) + "\n" + extra + "build\t-compiler=gc\nbuild\tGOOS=linux\n"


def framed(modinfo: str) -> bytes:
    return INFO_START + modinfo.encode() + INFO_END


def inline_blob(version: str, modinfo: bytes, *, ptr: int = 8, big: bool = False) -> bytes:
    header = MAGIC + bytes([ptr, 2 | (1 if big else 0)]) + b"\0" * 16
    v = version.encode()
    return header + uvarint(len(v)) + v + uvarint(len(modinfo)) + modinfo


def make_go_elf(
    version: str,
    modinfo: bytes,
    *,
    fmt: str = "inline",
    bits: int = 64,
    big: bool = False,
    decoy: bool = True,
    data_offset: int | None = None,
    trailer: bytes = b"",
) -> bytes:
    """An ELF executable with a read-only+exec segment (holding, for the pointer
    format, the strings; and a decoy copy of a valid-looking inline header, as
    programs that read build info themselves have) and a writable data segment
    starting with the build-info header."""
    bo = ">" if big else "<"
    ptr = 8 if bits == 64 else 4
    word = "Q" if bits == 64 else "I"
    text_off = PAGE
    text_base = 0x400000
    rodata = bytearray(b"\0" * 16)
    if decoy:
        rodata += inline_blob("go0.0.0-decoy", framed("path\tdecoy\n"), ptr=ptr, big=big)
        rodata += b"\0" * (-len(rodata) % 16)
    ver_at = len(rodata)
    rodata += version.encode()
    mod_at = len(rodata)
    rodata += modinfo
    if data_offset is None:
        data_offset = text_off + len(rodata)
        data_offset += -data_offset % PAGE
    assert data_offset >= text_off + len(rodata) and data_offset % 16 == 0
    data_base = 0x800000
    data_vaddr = data_base + data_offset  # vaddr == offset modulo the page size
    if fmt == "inline":
        data = bytearray(inline_blob(version, modinfo, ptr=ptr, big=big))
    else:
        hdr = data_vaddr + 32
        data = bytearray(MAGIC + bytes([ptr, 1 if big else 0]))
        data += struct.pack(bo + word, hdr) + struct.pack(bo + word, hdr + 2 * ptr)
        data += b"\0" * (32 - len(data))
        data += struct.pack(bo + word + word, text_base + text_off + ver_at, len(version))
        data += struct.pack(bo + word + word, text_base + text_off + mod_at, len(modinfo))
    data += b"\0" * 64

    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 2 if big else 1, 1]) + b"\0" * 9
    if bits == 64:
        ehsize, phentsize = 64, 56
        header = ident + struct.pack(
            bo + "HHIQQQIHHHHHH",
            2,
            62,
            1,
            text_base + text_off,
            ehsize,
            0,
            0,
            ehsize,
            phentsize,
            2,
            0,
            0,
            0,
        )
        phdrs = struct.pack(
            bo + "IIQQQQQQ",
            1,
            5,
            text_off,
            text_base + text_off,
            text_base + text_off,
            len(rodata),
            len(rodata),
            PAGE,
        ) + struct.pack(
            bo + "IIQQQQQQ", 1, 6, data_offset, data_vaddr, data_vaddr, len(data), len(data), PAGE
        )
    else:
        ehsize, phentsize = 52, 32
        header = ident + struct.pack(
            bo + "HHIIIIIHHHHHH",
            2,
            3,
            1,
            text_base + text_off,
            ehsize,
            0,
            0,
            ehsize,
            phentsize,
            2,
            0,
            0,
            0,
        )
        phdrs = struct.pack(
            bo + "IIIIIIII",
            1,
            text_off,
            text_base + text_off,
            text_base + text_off,
            len(rodata),
            len(rodata),
            5,
            PAGE,
        ) + struct.pack(
            bo + "IIIIIIII", 1, data_offset, data_vaddr, data_vaddr, len(data), len(data), 6, PAGE
        )
    out = bytearray(header + phdrs)
    out += b"\0" * (text_off - len(out))
    out += rodata
    out += b"\0" * (data_offset - len(out))
    out += data
    out += trailer
    return bytes(out)
