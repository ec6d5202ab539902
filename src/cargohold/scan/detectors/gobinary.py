"""Go binaries: the toolchain version and module list the Go linker embeds.

Format (as read by Go's own ``debug/buildinfo``): a 32-byte header, 16-byte aligned,
in the binary's writable data: the 14-byte magic ``"\\xff Go buildinf:"``, one byte of
pointer size, one byte of flags. With flag bit 2 set (Go >= 1.18) the header is
followed inline by two varint-length-prefixed strings, the Go version and the module
info. Otherwise (Go 1.13-1.17) the header holds two pointers (virtual addresses, in
the binary's byte order) to Go string headers (data pointer, length) elsewhere in the
file. The module info text is framed by two 16-byte sentinels and holds
tab-separated lines: ``path``, ``mod``, ``dep``, ``=>`` (replacement of the line
before) and ``build``.

Reading while the layer streams by: the ELF program headers come first in the file,
so the scanner knows where the writable segments are and looks for the magic only
there, keeping a few bytes of overlap between chunks (a bounded window; literal copies
of the magic in read-only data, as in programs that read build info themselves, are
never looked at). The inline format is decoded right there. The pointer format points
backwards into read-only data that has already gone by, so for those (old) binaries
the scanner answers ``NEEDS_RANDOM_ACCESS`` and the filesystem reads the file once
more, spooled (in memory up to a limit, then to a temporary file), for
:func:`read_build_info`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from packageurl import PackageURL

from cargohold.scan.layers import NEEDS_RANDOM_ACCESS, FileEntry, ImageFilesystem
from cargohold.scan.model import OSInfo, Package, Warnings

MAGIC = b"\xff Go buildinf:"
HEADER_SIZE = 32
ALIGN = 16
INFO_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
INFO_END = bytes.fromhex("f932433186182072008242104116d8f2")
MAX_VERSION = 1024
MAX_MODINFO = 8 << 20
ELF_HEAD = 64 << 10  # the ELF and program headers must lie in the first 64 KiB

PT_LOAD = 1
PF_X = 1
PF_W = 2

ANALYZER_NAME = "go-buildinfo"


@dataclass(frozen=True)
class GoModule:
    path: str
    version: str
    sum: str | None = None
    replaces: GoModule | None = None
    """For a module that replaced another (an ``=>`` line): the one it replaced."""


@dataclass(frozen=True)
class GoBuildInfo:
    go_version: str
    """As embedded, e.g. "go1.22.3"."""
    path: str | None
    main: GoModule | None
    deps: tuple[GoModule, ...]
    settings: tuple[tuple[str, str], ...]
    format: str
    """"inline" (Go >= 1.18) or "pointer" (older)."""

    @property
    def stdlib_version(self) -> str | None:
        """The toolchain version without the "go" prefix ("1.22.3"), None for devel."""
        v = self.go_version.split()[0] if self.go_version.split() else ""
        if not v.startswith("go") or len(v) < 3 or not v[2].isdigit():
            return None
        return v[2:]


# ------------------------------------------------------------------- parsing text


def parse_modinfo(text: str) -> tuple[str | None, GoModule | None, list[GoModule], list]:
    """Parse the module info text (without sentinels): (path, main, deps, settings)."""
    path: str | None = None
    main: GoModule | None = None
    deps: list[GoModule] = []
    settings: list[tuple[str, str]] = []
    last: str | None = None  # "mod" or "dep": what a "=>" line replaces
    for line in text.split("\n"):
        fields = line.split("\t")
        key = fields[0]
        if key == "path" and len(fields) >= 2:
            path = fields[1]
            last = None
        elif key in ("mod", "dep") and len(fields) >= 3 and fields[1]:
            module = GoModule(
                fields[1], fields[2], fields[3] if len(fields) > 3 and fields[3] else None
            )
            if key == "mod":
                main = module
            else:
                deps.append(module)
            last = key
        elif key == "=>" and len(fields) >= 3 and last is not None:
            replaced = main if last == "mod" else deps[-1]
            assert replaced is not None
            module = GoModule(
                fields[1], fields[2], fields[3] if len(fields) > 3 and fields[3] else None, replaced
            )
            if last == "mod":
                main = module
            else:
                deps[-1] = module
            last = None
        elif key == "build" and len(fields) >= 2:
            k, _, v = "\t".join(fields[1:]).partition("=")
            settings.append((k, v))
    return path, main, deps, settings


def _strip_sentinels(mod: bytes) -> bytes:
    if len(mod) >= 33 and mod[-17:-16] == b"\n":
        return mod[16:-16]
    return b""


def _build_info(version: bytes, mod: bytes, fmt: str) -> GoBuildInfo | None:
    if not version:
        return None
    try:
        vers = version.decode("utf-8")
        text = _strip_sentinels(mod).decode("utf-8", "replace")
    except UnicodeDecodeError:
        return None
    if not vers.isprintable():
        return None
    path, main, deps, settings = parse_modinfo(text)
    return GoBuildInfo(vers, path, main, tuple(deps), tuple(settings), fmt)


def _uvarint(buf: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """Decode an unsigned varint at ``pos``: (value, next position), or None if
    the buffer ends first. Raises ValueError when it is longer than 10 bytes."""
    value = 0
    shift = 0
    for i in range(pos, min(len(buf), pos + 10)):
        b = buf[i]
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i + 1
        shift += 7
    if len(buf) >= pos + 10:
        raise ValueError("varint too long")
    return None


# ------------------------------------------------------------------------- ELF


@dataclass(frozen=True)
class _Segment:
    offset: int
    vaddr: int
    filesz: int
    flags: int


def _parse_elf(head: bytes | bytearray) -> tuple[str, list[_Segment]] | None:
    """Byte order ('<' or '>') and PT_LOAD segments of an ELF file from its first
    bytes; None when they are not there or make no sense."""
    if len(head) < 52 or head[:4] != b"\x7fELF":
        return None
    cls, data = head[4], head[5]
    if data not in (1, 2) or cls not in (1, 2):
        return None
    bo = "<" if data == 1 else ">"
    if cls == 2:
        if len(head) < 64:
            return None
        (phoff,) = struct.unpack_from(bo + "Q", head, 0x20)
        phentsize, phnum = struct.unpack_from(bo + "HH", head, 0x36)
        want = 56
    else:
        (phoff,) = struct.unpack_from(bo + "I", head, 0x1C)
        phentsize, phnum = struct.unpack_from(bo + "HH", head, 0x2A)
        want = 32
    if phentsize < want or phnum == 0 or phoff + phentsize * phnum > len(head):
        return None
    segments: list[_Segment] = []
    for i in range(phnum):
        at = phoff + i * phentsize
        if cls == 2:
            p_type, p_flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
                bo + "IIQQQQ", head, at
            )
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz, _memsz, p_flags = struct.unpack_from(
                bo + "IIIIIII", head, at
            )
        if p_type == PT_LOAD:
            segments.append(_Segment(p_offset, p_vaddr, p_filesz, p_flags))
    return bo, segments


def _writable_range(segments: list[_Segment]) -> tuple[int, int] | None:
    writable = [s for s in segments if s.flags & (PF_W | PF_X) == PF_W and s.filesz > 0]
    if not writable:
        return None
    return min(s.offset for s in writable), max(s.offset + s.filesz for s in writable)


# ------------------------------------------------------------------ the scanner


class BuildInfoScanner:
    """Finds and decodes Go build info in a file fed to it in order, chunk by chunk.

    Memory stays bounded: the ELF head (64 KiB at most), a 31-byte overlap while
    searching, and the inline strings once the header is found (bounded by
    MAX_VERSION and MAX_MODINFO).
    """

    def __init__(self, max_modinfo: int = MAX_MODINFO) -> None:
        self.max_modinfo = max_modinfo
        self.result: GoBuildInfo | None = None
        self.pointer_header: tuple[int, bytes] | None = None
        """(file offset, 32 header bytes) of a pointer-format header."""
        self.elf: tuple[str, list[_Segment]] | None = None
        self._head = bytearray()
        self._state = "head"
        self._buf = bytearray()
        self._pos = 0  # file offset of _buf[0]
        self._scan_from = 0
        self._scan_to = 0
        self._done = False

    def feed(self, chunk: bytes) -> bool:
        if self._done:
            return False
        if self._state == "head":
            self._head += chunk
            if len(self._head) >= 4 and self._head[:4] != b"\x7fELF":
                return self._finish()
            parsed = _parse_elf(self._head)
            if parsed is None:
                if len(self._head) >= ELF_HEAD:
                    return self._finish()
                return True
            self.elf = parsed
            rng = _writable_range(parsed[1])
            if rng is None:
                return self._finish()
            self._scan_from, self._scan_to = rng
            self._state = "scan"
            chunk = bytes(self._head)
            self._head = bytearray()
            self._pos = 0
            self._buf = bytearray()
        return self._feed_scan(chunk)

    def _finish(self) -> bool:
        self._done = True
        self._buf = bytearray()
        self._head = bytearray()
        return False

    def _feed_scan(self, chunk: bytes) -> bool:
        end_of_chunk = self._pos + len(self._buf) + len(chunk)
        if not self._buf and end_of_chunk <= self._scan_from:
            self._pos = end_of_chunk
            return True
        if not self._buf and self._pos < self._scan_from:
            skip = self._scan_from - self._pos
            chunk = chunk[skip:]
            self._pos = self._scan_from
        self._buf += chunk
        return self._search()

    def _search(self) -> bool:
        start = 0
        while True:
            if self._pos + start >= self._scan_to:
                return self._finish()
            i = self._buf.find(MAGIC, start)
            if i < 0:
                keep = HEADER_SIZE - 1
                if len(self._buf) > keep:
                    drop = len(self._buf) - keep
                    del self._buf[:drop]
                    self._pos += drop
                return True
            if (self._pos + i) % ALIGN:
                start = i + 1
                continue
            if len(self._buf) - i < HEADER_SIZE:
                del self._buf[:i]
                self._pos += i
                return True
            verdict = self._try_header(i)
            if verdict == "more":
                del self._buf[:i]
                self._pos += i
                return True
            if verdict == "done":
                return self._finish()
            start = i + 1

    def _try_header(self, i: int) -> str:
        buf = self._buf
        ptr_size, flags = buf[i + 14], buf[i + 15]
        if ptr_size not in (4, 8) or flags > 3:
            return "bad"
        if not flags & 2:
            if flags > 1:
                return "bad"
            self.pointer_header = (self._pos + i, bytes(buf[i : i + HEADER_SIZE]))
            return "done"
        if any(buf[i + 16 : i + HEADER_SIZE]):
            return "bad"
        try:
            first = _uvarint(buf, i + HEADER_SIZE)
            if first is None:
                return "more"
            vlen, at = first
            if vlen == 0 or vlen > MAX_VERSION:
                return "bad"
            if len(buf) < at + vlen:
                return "more"
            version = bytes(buf[at : at + vlen])
            second = _uvarint(buf, at + vlen)
            if second is None:
                return "more"
            mlen, mat = second
            if mlen > self.max_modinfo:
                return "bad"
            if len(buf) < mat + mlen:
                return "more"
            mod = bytes(buf[mat : mat + mlen])
        except ValueError:
            return "bad"
        info = _build_info(version, mod, "inline")
        if info is None:
            return "bad"
        self.result = info
        return "done"


def _read_at(f: BinaryIO, offset: int, n: int) -> bytes:
    f.seek(offset)
    return f.read(n)


def _vaddr_read(f: BinaryIO, segments: list[_Segment], addr: int, n: int) -> bytes | None:
    for s in segments:
        if s.vaddr <= addr < s.vaddr + s.filesz:
            if addr + n > s.vaddr + s.filesz:
                return None
            data = _read_at(f, s.offset + (addr - s.vaddr), n)
            return data if len(data) == n else None
    return None


def read_build_info(f: BinaryIO, max_modinfo: int = MAX_MODINFO) -> GoBuildInfo | None:
    """Go build info of the ELF binary in the seekable file ``f`` (either format),
    or None when it has none."""
    scanner = BuildInfoScanner(max_modinfo)
    f.seek(0)
    while True:
        chunk = f.read(1 << 20)
        if not chunk or not scanner.feed(chunk):
            break
    if scanner.result is not None:
        return scanner.result
    if scanner.pointer_header is None or scanner.elf is None:
        return None
    bo, segments = scanner.elf
    _offset, header = scanner.pointer_header
    ptr_size = header[14]
    if header[15] == 1:
        bo = ">"
    fmt = bo + ("I" if ptr_size == 4 else "Q")

    def read_string(addr: int, limit: int) -> bytes | None:
        hdr = _vaddr_read(f, segments, addr, 2 * ptr_size)
        if hdr is None:
            return None
        (data_addr,) = struct.unpack_from(fmt, hdr, 0)
        (length,) = struct.unpack_from(fmt, hdr, ptr_size)
        if length > limit:
            return None
        if length == 0:
            return b""
        return _vaddr_read(f, segments, data_addr, length)

    (vers_addr,) = struct.unpack_from(fmt, header, 16)
    (mod_addr,) = struct.unpack_from(fmt, header, 16 + ptr_size)
    version = read_string(vers_addr, MAX_VERSION)
    mod = read_string(mod_addr, max_modinfo)
    if not version:
        return None
    return _build_info(version, mod or b"", "pointer")


class _Sink:
    def __init__(self, max_modinfo: int) -> None:
        self.scanner = BuildInfoScanner(max_modinfo)

    def feed(self, chunk: bytes) -> bool:
        return self.scanner.feed(chunk)

    def close(self) -> object | None:
        if self.scanner.result is not None:
            return self.scanner.result
        if self.scanner.pointer_header is not None:
            return NEEDS_RANDOM_ACCESS
        return None


class GoBuildInfoAnalyzer:
    """The :class:`~cargohold.scan.layers.Analyzer` that reads Go build info."""

    name = ANALYZER_NAME

    def __init__(self, max_modinfo: int = MAX_MODINFO) -> None:
        self.max_modinfo = max_modinfo

    def accepts(self, path: str, mode: int, size: int) -> bool:
        return bool(mode & 0o111) and size >= 64

    def open_sink(self, path: str, size: int) -> _Sink:
        return _Sink(self.max_modinfo)

    def analyze_file(self, f: BinaryIO, size: int) -> object | None:
        return read_build_info(f, self.max_modinfo)


# -------------------------------------------------------------------- detector


def go_purl(module_path: str, version: str) -> str:
    namespace, _, name = module_path.rpartition("/")
    return PackageURL(
        type="golang", namespace=namespace or None, name=name, version=version
    ).to_string()


def _usable_version(version: str) -> bool:
    return bool(version) and version != "(devel)"


class GoBinaryDetector:
    name = "go"

    def __init__(self, max_modinfo: int = MAX_MODINFO) -> None:
        self.analyzers = (GoBuildInfoAnalyzer(max_modinfo),)

    def keep(self, path: str) -> int | None:
        return None

    def detect(
        self, fs: ImageFilesystem, os_info: OSInfo | None, warnings: Warnings
    ) -> list[Package]:
        packages: list[Package] = []
        seen: set[int] = set()
        for entry, info in iter_go_binaries(fs):
            if id(entry.data_entry) in seen:
                continue
            seen.add(id(entry.data_entry))
            packages.extend(packages_from_build_info(info, entry, warnings))
        return packages


def iter_go_binaries(fs: ImageFilesystem) -> Iterator[tuple[FileEntry, GoBuildInfo]]:
    """(entry, build info) for each Go binary in the final filesystem."""
    for entry in fs.iter_entries():
        data = entry.data_entry
        if data.analysis is None:
            continue
        info = data.analysis.get(ANALYZER_NAME)
        if isinstance(info, GoBuildInfo):
            yield entry, info


def packages_from_build_info(
    info: GoBuildInfo, entry: FileEntry, warnings: Warnings
) -> list[Package]:
    data = entry.data_entry

    def pkg(name: str, version: str, kind: str) -> Package:
        return Package(
            name=name,
            version=version,
            ecosystem="Go",
            purl=go_purl(name, version),
            kind=kind,
            layer_digest=data.layer_digest,
            layer_index=data.layer_index,
            path="/" + entry.path,
        )

    out: list[Package] = []
    stdlib = info.stdlib_version
    if stdlib is None:
        warnings.add("go-unknown-toolchain-version")
    else:
        out.append(pkg("stdlib", stdlib, "go-stdlib"))
    modules = ([info.main] if info.main is not None else []) + list(info.deps)
    for module in modules:
        if _usable_version(module.version):
            out.append(pkg(module.path, module.version, "go-module"))
    return out
