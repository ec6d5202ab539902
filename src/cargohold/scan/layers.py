"""Read image layers as streams and apply them, in order, to an in-memory file tree.

Nothing is extracted to disk. Each layer blob is decompressed on the fly (gzip, zstd,
bzip2, xz or plain tar, told apart by their magic bytes) and its tar members are read
once, in order (``tarfile`` stream mode). For every member the tree keeps only its
metadata; the *content* is kept only for regular files a caller asks for (``keep``,
a predicate on the path returning how many bytes to keep), and executables can be fed,
chunk by chunk, to :class:`Analyzer` objects (the Go build-info reader) while they go by.

Whiteouts follow the OCI image spec: ``.wh.NAME`` deletes NAME from the lower layers,
``.wh..wh..opq`` hides everything the lower layers had in its directory; both apply to
lower layers only, never to entries of the same layer. Links are recorded as links and
resolved only inside the image: a target that climbs above the root with ``..`` resolves
to nothing, as do loops and chains longer than ``ScanLimits.max_link_depth``.

Anything odd in a layer (a name escaping the root, a truncated or corrupt stream, an
absurd size, a file too large to keep) is counted in :attr:`ImageFilesystem.warnings`
and skipped; reading a layer never raises for its content.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import logging
import lzma
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

import zstandard

from cargohold.scan.model import Warnings

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"

FILE = "file"
DIR = "dir"
SYMLINK = "symlink"
HARDLINK = "hardlink"
OTHER = "other"

_CHUNK = 1 << 20


@dataclass(frozen=True)
class LayerSource:
    """One layer of an image: its digest, media type and a way to open its blob.

    ``open`` must return a fresh binary stream positioned at the start of the blob
    each time it is called (the reader may open a layer a second time, see
    :meth:`ImageFilesystem.from_layers`). The stream is closed by the reader.
    """

    digest: str
    media_type: str
    open: Callable[[], BinaryIO]


@dataclass(frozen=True)
class ScanLimits:
    """Bounds that keep a hostile image from exhausting memory, disk or time."""

    max_kept_file: int = 64 << 20
    """Largest file whose content is kept (a ``keep`` answer above this is lowered)."""
    max_kept_total: int = 1 << 30
    """All kept content together."""
    max_entries: int = 5_000_000
    """Entries in the tree, all layers together."""
    max_path_length: int = 4096
    max_link_depth: int = 40
    """Symlinks followed while resolving one path (Linux's MAXSYMLINKS)."""
    max_layer_bytes: int = 64 << 30
    """Uncompressed bytes read from one layer."""
    max_analyzed_file: int = 2 << 30
    """Largest executable fed to analyzers."""
    spool_memory: int = 64 << 20
    """A file spooled for random access stays in memory up to this size."""


@dataclass(slots=True, eq=False)
class FileEntry:
    """One path of the final image filesystem and the layer member it came from."""

    path: str
    kind: str
    mode: int
    size: int
    layer_index: int
    layer_digest: str
    ordinal: int
    """Position of the member in its layer's tar stream (0-based)."""
    linkname: str | None = None
    """Symlink: the target as written. Hard link: the normalized target path."""
    target: FileEntry | None = None
    """Hard link: the entry holding the data."""
    content: bytes | None = None
    content_truncated: bool = False
    analysis: dict[str, object] | None = None

    @property
    def data_entry(self) -> FileEntry:
        """The entry holding this path's bytes (the hard link target, else itself)."""
        return self.target if self.kind == HARDLINK and self.target is not None else self

    @property
    def is_executable(self) -> bool:
        return self.kind in (FILE, HARDLINK) and bool(self.mode & 0o111)


class StreamSink(Protocol):
    """Receives one file's bytes in order; see :class:`Analyzer`."""

    def feed(self, chunk: bytes) -> bool:
        """Take the next bytes; return False once no more are needed."""

    def close(self) -> object | None:
        """Return the result (stored in ``FileEntry.analysis``), None, or
        :data:`NEEDS_RANDOM_ACCESS` to be called again with the whole file."""


class Analyzer(Protocol):
    """Looks at the bytes of executables while their layer streams by."""

    name: str

    def accepts(self, path: str, mode: int, size: int) -> bool: ...

    def open_sink(self, path: str, size: int) -> StreamSink: ...

    def analyze_file(self, f: BinaryIO, size: int) -> object | None:
        """Random-access fallback for files whose sink answered NEEDS_RANDOM_ACCESS."""


class _NeedsRandomAccess:
    def __repr__(self) -> str:
        return "NEEDS_RANDOM_ACCESS"


NEEDS_RANDOM_ACCESS = _NeedsRandomAccess()

KeepPredicate = Callable[[str], int | None]


class LayerReadError(Exception):
    """A layer blob that cannot be read as a (compressed) tar stream."""


class _LimitExceeded(LayerReadError):
    pass


class _HeaderTooLarge(tarfile.TarError):
    pass


# What decompressing and reading a hostile or broken stream can raise.
STREAM_ERRORS: tuple[type[BaseException], ...] = (
    tarfile.TarError,
    EOFError,
    OSError,
    ValueError,
    zlib.error,
    zstandard.ZstdError,
    lzma.LZMAError,
)

MAX_EXTENDED_HEADER = 16 << 20


class _BoundedTarInfo(tarfile.TarInfo):
    """Refuses pax and GNU long-name headers larger than MAX_EXTENDED_HEADER:
    tarfile reads those whole into memory, so a forged size would be a memory bomb."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:  # type: ignore[override]
        if (
            self.type
            in (
                tarfile.XHDTYPE,
                tarfile.XGLTYPE,
                tarfile.SOLARIS_XHDTYPE,
                tarfile.GNUTYPE_LONGNAME,
                tarfile.GNUTYPE_LONGLINK,
            )
            and self.size > MAX_EXTENDED_HEADER
        ):
            raise _HeaderTooLarge(f"extended header of {self.size} bytes")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


# --------------------------------------------------------------------------- streams


class _RawReader(io.RawIOBase):
    """A raw stream over ``prefix`` followed by ``inner``, optionally byte-limited."""

    def __init__(self, inner: BinaryIO, prefix: bytes = b"", limit: int | None = None) -> None:
        self._inner = inner
        self._prefix = prefix
        self._limit = limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(b).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
        else:
            data = self._inner.read(len(view))
            n = len(data) if data else 0
            view[:n] = data or b""
        self.count += n
        if self._limit is not None and self.count > self._limit:
            raise _LimitExceeded(f"layer larger than {self._limit} bytes uncompressed")
        return n


def _read_exact_prefix(stream: BinaryIO, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = stream.read(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def open_layer_stream(
    blob: BinaryIO, media_type: str = "", max_bytes: int | None = None
) -> BinaryIO:
    """Return the uncompressed tar stream of a layer blob.

    The compression is recognised by its magic bytes (gzip, zstd, bzip2, xz), so a
    media type that lies does not matter; anything else is read as a plain tar.
    ``max_bytes`` bounds the uncompressed size (a decompression bomb then fails the
    read with :class:`LayerReadError`).
    """
    head = _read_exact_prefix(blob, 6)
    raw = io.BufferedReader(_RawReader(blob, head), buffer_size=_CHUNK)
    if head.startswith(b"\x1f\x8b"):
        inner: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
    elif head.startswith(b"\x28\xb5\x2f\xfd"):
        inner = zstandard.ZstdDecompressor().stream_reader(  # type: ignore[assignment]
            raw, read_size=_CHUNK, read_across_frames=True
        )
    elif head.startswith(b"BZh"):
        inner = bz2.BZ2File(raw, mode="rb")  # type: ignore[assignment]
    elif head.startswith(b"\xfd7zXZ\x00"):
        inner = lzma.LZMAFile(raw, mode="rb")  # type: ignore[assignment]  # noqa: SIM115
    else:
        inner = raw  # type: ignore[assignment]
    return io.BufferedReader(_RawReader(inner, limit=max_bytes), buffer_size=_CHUNK)


def iter_layer_members(tar_stream: BinaryIO) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """Yield ``(tarfile, member)`` for each member of an uncompressed tar stream, in
    order, in streaming mode. A member's data can be read with
    ``tarfile.extractfile(member)`` only before the next member is asked for.
    Raises :class:`LayerReadError` for a stream that is not a tar or breaks off."""
    try:
        # Not a context manager: the generator hands members out; the caller closes
        # tar_stream.
        tf = tarfile.open(fileobj=tar_stream, mode="r|", tarinfo=_BoundedTarInfo)  # noqa: SIM115
    except _LimitExceeded:
        raise
    except STREAM_ERRORS as exc:
        raise LayerReadError(f"not a tar stream: {exc}") from exc
    while True:
        try:
            member = tf.next()
        except _LimitExceeded:
            raise
        except STREAM_ERRORS as exc:
            raise LayerReadError(f"corrupt or truncated tar stream: {exc}") from exc
        if member is None:
            return
        # Stream mode keeps every member in tf.members; we never look back.
        tf.members.clear()
        yield tf, member
        _skip_to_next_header(tf)


def _skip_to_next_header(tf: tarfile.TarFile) -> None:
    """Read past the rest of the current member ourselves: tarfile's own skip in
    stream mode loops block by block even past the end of the stream, which a
    member claiming a size of petabytes would turn into an endless loop."""
    stream = tf.fileobj
    assert stream is not None
    try:
        remaining = tf.offset - stream.tell()
        while remaining > 0:
            n = min(remaining, _CHUNK)
            got = len(stream.read(n))
            if got < n:
                raise LayerReadError("unexpected end of data inside a member")
            remaining -= got
    except _LimitExceeded:
        raise
    except STREAM_ERRORS as exc:
        raise LayerReadError(f"corrupt or truncated tar stream: {exc}") from exc


def normalize_member_path(name: str) -> str | None:
    """Normalize a tar member name to a path relative to the image root ("" is the
    root). Returns None for a name whose ``..`` would climb above the root.
    Absolute names are taken relative to the image root, as layer appliers do."""
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


# ------------------------------------------------------------------------------ tree


class _Node:
    __slots__ = ("children", "entry")

    def __init__(self, entry: FileEntry | None, is_dir: bool) -> None:
        self.entry = entry
        self.children: dict[str, _Node] | None = {} if is_dir else None


@dataclass
class _Staged:
    parts: list[str]
    entry: FileEntry | None  # None for whiteouts
    whiteout: str | None = None  # "file" or "opaque"
    hardlink_to: list[str] | None = None


@dataclass
class _Deferred:
    keep: int | None = None
    content_entries: list[FileEntry] = field(default_factory=list)
    analyzers: list[tuple[Analyzer, FileEntry]] = field(default_factory=list)


class ImageFilesystem:
    """The final filesystem of an image, built by applying its layers in order.

    Build one with :meth:`from_layers`. Paths given to its methods are relative to the
    image root or absolute (a leading ``/`` is ignored).
    """

    def __init__(self, limits: ScanLimits | None = None) -> None:
        self.limits = limits or ScanLimits()
        self.warnings = Warnings()
        self.layers: list[LayerSource] = []
        self._root = _Node(None, is_dir=True)
        self._entries = 0
        self._kept_total = 0
        self._history: dict[str, list[FileEntry | None]] = {}

    # ---------------------------------------------------------------- building

    @classmethod
    def from_layers(
        cls,
        layers: Iterable[LayerSource],
        *,
        keep: KeepPredicate | None = None,
        analyzers: Iterable[Analyzer] = (),
        limits: ScanLimits | None = None,
    ) -> ImageFilesystem:
        """Apply ``layers`` (lowest first) and return the resulting filesystem.

        ``keep(path)`` is asked for each regular file: a positive number keeps up to
        that many bytes of its content (``FileEntry.content``; ``content_truncated``
        tells when the file was longer). ``analyzers`` see the bytes of executables.

        Each layer is read once. A layer is opened a second time only when, in the
        final tree, a wanted file's content lives in a member that was not kept on
        the first pass (the path was reached through a link) or an analyzer needs
        random access to a file (a Go binary of the pre-1.18 build-info format).
        """
        fs = cls(limits)
        keep_fn: KeepPredicate = keep or (lambda _path: None)
        analyzer_list = list(analyzers)
        for index, layer in enumerate(layers):
            fs.layers.append(layer)
            fs._apply_layer(index, layer, keep_fn, analyzer_list)
        fs._second_pass(keep_fn, analyzer_list)
        return fs

    def _apply_layer(
        self, index: int, layer: LayerSource, keep: KeepPredicate, analyzers: list[Analyzer]
    ) -> None:
        staged: list[_Staged] = []
        try:
            blob = layer.open()
        except Exception as exc:  # the caller's opener: report, don't crash
            log.warning("cannot open layer %s: %s", layer.digest, exc)
            self.warnings.add("layer-unreadable")
            return
        try:
            with contextlib.closing(blob):
                stream = open_layer_stream(blob, layer.media_type, self.limits.max_layer_bytes)
                for ordinal, (tf, member) in enumerate(iter_layer_members(stream)):
                    item = self._stage_member(index, layer, ordinal, tf, member, keep, analyzers)
                    if item is not None:
                        staged.append(item)
                    if self._entries + len(staged) > self.limits.max_entries:
                        self.warnings.add("too-many-entries")
                        break
        except _LimitExceeded as exc:
            log.warning("layer %s: %s", layer.digest, exc)
            self.warnings.add("layer-too-large")
        except (LayerReadError, *STREAM_ERRORS) as exc:
            log.warning("layer %s: %s", layer.digest, exc)
            self.warnings.add("layer-truncated-or-corrupt")
        except Exception:  # last resort: a layer must never crash the scan
            log.exception("layer %s: unexpected error", layer.digest)
            self.warnings.add("layer-error")
        # Whiteouts hide lower layers only: apply them before this layer's entries.
        for item in staged:
            if item.whiteout is not None:
                self._apply_whiteout(item)
        for item in staged:
            if item.whiteout is None:
                self._merge(item)

    def _stage_member(
        self,
        index: int,
        layer: LayerSource,
        ordinal: int,
        tf: tarfile.TarFile,
        member: tarfile.TarInfo,
        keep: KeepPredicate,
        analyzers: list[Analyzer],
    ) -> _Staged | None:
        name = member.name
        if len(name) > self.limits.max_path_length:
            self.warnings.add("path-too-long")
            return None
        path = normalize_member_path(name)
        if path is None:
            self.warnings.add("path-escapes-root")
            return None
        if path == "":
            return None  # the root directory itself
        parts = path.split("/")
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            if base == OPAQUE_MARKER:
                return _Staged(parts[:-1], None, whiteout="opaque")
            if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
                return None  # other AUFS metadata (.wh..wh.plnk, ...)
            target = base[len(WHITEOUT_PREFIX) :]
            if target in ("", ".", ".."):
                self.warnings.add("bad-whiteout")
                return None
            return _Staged([*parts[:-1], target], None, whiteout="file")

        size = max(int(member.size), 0)
        entry = FileEntry(
            path=path,
            kind=OTHER,
            mode=int(member.mode) & 0o7777,
            size=size,
            layer_index=index,
            layer_digest=layer.digest,
            ordinal=ordinal,
        )
        if member.isdir():
            entry.kind = DIR
            entry.size = 0
        elif member.issym():
            entry.kind = SYMLINK
            entry.linkname = member.linkname
            entry.size = 0
        elif member.islnk():
            entry.kind = HARDLINK
            entry.size = 0
            target = normalize_member_path(member.linkname)
            if not target:
                self.warnings.add("hardlink-escapes-root")
                return None
            entry.linkname = target
            return _Staged(parts, entry, hardlink_to=target.split("/"))
        elif member.isreg():
            entry.kind = FILE
            self._read_member(tf, member, entry, keep, analyzers)
        return _Staged(parts, entry)

    def _keep_limit(self, path: str, keep: KeepPredicate) -> int:
        try:
            wanted = keep(path)
        except Exception:
            self.warnings.add("keep-predicate-error")
            return 0
        if not wanted or wanted <= 0:
            return 0
        return min(int(wanted), self.limits.max_kept_file)

    def _read_member(
        self,
        tf: tarfile.TarFile,
        member: tarfile.TarInfo,
        entry: FileEntry,
        keep: KeepPredicate,
        analyzers: list[Analyzer],
    ) -> None:
        cap = self._keep_limit(entry.path, keep)
        sinks: list[tuple[Analyzer, StreamSink]] = []
        if entry.mode & 0o111 and 0 < entry.size <= self.limits.max_analyzed_file:
            for analyzer in analyzers:
                try:
                    if analyzer.accepts(entry.path, entry.mode, entry.size):
                        sinks.append((analyzer, analyzer.open_sink(entry.path, entry.size)))
                except Exception:
                    self.warnings.add(f"analyzer-error:{analyzer.name}")
        if not cap and not sinks:
            return
        if cap and self._kept_total + min(cap, entry.size) > self.limits.max_kept_total:
            self.warnings.add("kept-content-limit")
            cap = 0
        f = tf.extractfile(member)
        if f is None:
            return
        kept = bytearray()
        remaining = entry.size
        active = list(sinks)
        while remaining > 0 and (active or len(kept) < cap):
            chunk = f.read(min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            if len(kept) < cap:
                kept += chunk[: cap - len(kept)]
            still: list[tuple[Analyzer, StreamSink]] = []
            for analyzer, sink in active:
                try:
                    if sink.feed(chunk):
                        still.append((analyzer, sink))
                except Exception:
                    self.warnings.add(f"analyzer-error:{analyzer.name}")
                    sinks.remove((analyzer, sink))
            active = still
        if cap:
            entry.content = bytes(kept)
            entry.content_truncated = entry.size > len(kept)
            self._kept_total += len(kept)
            if entry.content_truncated:
                self.warnings.add("kept-file-truncated")
        for analyzer, sink in sinks:
            try:
                result = sink.close()
            except Exception:
                self.warnings.add(f"analyzer-error:{analyzer.name}")
                continue
            if result is not None:
                if entry.analysis is None:
                    entry.analysis = {}
                entry.analysis[analyzer.name] = result

    # ------------------------------------------------------------ tree updates

    def _walk_dir(self, parts: list[str], create: bool) -> tuple[list[str], _Node] | None:
        """Find (or create) the directory ``parts``, following symlinks inside the
        image as a layer applier does. Returns its canonical parts and node."""
        cur: list[str] = []
        node = self._root
        for name in parts:
            assert node.children is not None
            child = node.children.get(name)
            if child is None:
                if not create:
                    return None
                child = _Node(None, is_dir=True)
                node.children[name] = child
            elif child.entry is not None and child.entry.kind == SYMLINK:
                resolved = self._resolve_parts([*cur, name], follow_final=True)
                if resolved is None or resolved[1].children is None:
                    if not create:
                        return None
                    self.warnings.add("unresolvable-parent")
                    return None
                cur, child = list(resolved[0]), resolved[1]
                node = child
                continue
            elif child.children is None:
                if not create:
                    return None
                # A file where the layer needs a directory: the directory wins.
                self.warnings.add("file-replaced-by-directory")
                self._forget(f"{'/'.join([*cur, name])}", child)
                child = _Node(None, is_dir=True)
                node.children[name] = child
            cur.append(name)
            node = child
        return cur, node

    def _forget(self, path: str, node: _Node) -> None:
        """Record in the content history that ``path`` and its subtree went away."""
        if not self._history:
            return
        stack = [(path, node)]
        while stack:
            p, n = stack.pop()
            if p in self._history:
                self._history[p].append(None)
            if n.children:
                stack.extend((f"{p}/{k}", c) for k, c in n.children.items())

    def _count(self, node: _Node) -> int:
        total = 0
        stack = [node]
        while stack:
            n = stack.pop()
            if n.entry is not None:
                total += 1
            if n.children:
                stack.extend(n.children.values())
        return total

    def _apply_whiteout(self, item: _Staged) -> None:
        parent = self._walk_dir(item.parts[:-1] if item.whiteout == "file" else item.parts, False)
        if parent is None:
            return  # nothing below to hide
        cur, node = parent
        assert node.children is not None
        if item.whiteout == "opaque":
            for name, child in node.children.items():
                self._entries -= self._count(child)
                self._forget("/".join([*cur, name]), child)
            node.children = {}
            return
        name = item.parts[-1]
        child = node.children.pop(name, None)
        if child is not None:
            self._entries -= self._count(child)
            self._forget("/".join([*cur, name]), child)

    def _merge(self, item: _Staged) -> None:
        entry = item.entry
        assert entry is not None
        parent = self._walk_dir(item.parts[:-1], True)
        if parent is None:
            return
        cur, node = parent
        assert node.children is not None
        name = item.parts[-1]
        path = "/".join([*cur, name])
        entry.path = path
        if item.hardlink_to is not None:
            target = self._lookup_hardlink_target(item.hardlink_to)
            if target is None:
                self.warnings.add("hardlink-target-missing")
                return
            if target.kind == SYMLINK:
                entry.kind, entry.linkname = SYMLINK, target.linkname
            else:
                entry.target = target.data_entry
                entry.size = entry.target.size
                entry.mode = entry.target.mode
        existing = node.children.get(name)
        if existing is not None:
            if (
                entry.kind == DIR
                and existing.children is not None
                and (existing.entry is None or existing.entry.kind == DIR)
            ):
                # a directory over a directory: merge (keep the lower contents)
                if existing.entry is None:
                    self._entries += 1
                existing.entry = entry
                return
            self._entries -= self._count(existing)
            if not (entry.kind == FILE and existing.children is None):
                # a new version of a file is not a deletion in its history
                self._forget(path, existing)
        node.children[name] = _Node(entry, is_dir=entry.kind == DIR)
        self._entries += 1
        if entry.kind == FILE and entry.content is not None:
            self._history.setdefault(path, []).append(entry)

    def _lookup_hardlink_target(self, parts: list[str]) -> FileEntry | None:
        parent = self._walk_dir(parts[:-1], False)
        if parent is None:
            return None
        node = parent[1]
        assert node.children is not None
        child = node.children.get(parts[-1])
        if child is None or child.entry is None or child.entry.kind == DIR:
            return None
        return child.entry

    # -------------------------------------------------------------- second pass

    def _second_pass(self, keep: KeepPredicate, analyzers: list[Analyzer]) -> None:
        by_layer: dict[int, dict[int, _Deferred]] = {}

        def job(data: FileEntry) -> _Deferred:
            return by_layer.setdefault(data.layer_index, {}).setdefault(data.ordinal, _Deferred())

        seen: set[int] = set()
        for entry in self.iter_entries():
            cap = 0
            if entry.kind == SYMLINK:
                # a wanted path that is a symlink: keep what it leads to
                cap = self._keep_limit(entry.path, keep)
                resolved = self.stat(entry.path) if cap else None
                if resolved is None:
                    continue
                data = resolved.data_entry
            elif entry.kind in (FILE, HARDLINK):
                data = entry.data_entry
            else:
                continue
            if data.kind != FILE:
                continue
            if data.content is None and data.size > 0:
                cap = cap or self._keep_limit(entry.path, keep)
                if cap:
                    d = job(data)
                    d.keep = max(d.keep or 0, cap)
                    if not any(e is data for e in d.content_entries):
                        d.content_entries.append(data)
            if data.analysis and id(data) not in seen:
                seen.add(id(data))
                for analyzer in analyzers:
                    if data.analysis.get(analyzer.name) is NEEDS_RANDOM_ACCESS:
                        del data.analysis[analyzer.name]
                        job(data).analyzers.append((analyzer, data))
        for index, wanted in sorted(by_layer.items()):
            self._reread_layer(index, wanted)

    def _reread_layer(self, index: int, wanted: dict[int, _Deferred]) -> None:
        layer = self.layers[index]
        try:
            blob = layer.open()
        except Exception:
            self.warnings.add("layer-unreadable")
            return
        try:
            with contextlib.closing(blob):
                stream = open_layer_stream(blob, layer.media_type, self.limits.max_layer_bytes)
                for ordinal, (tf, member) in enumerate(iter_layer_members(stream)):
                    job = wanted.pop(ordinal, None)
                    if job is not None and member.isreg():
                        self._run_deferred(tf, member, job)
                    if not wanted:
                        return
        except (LayerReadError, *STREAM_ERRORS):
            self.warnings.add("layer-truncated-or-corrupt")
        except Exception:
            log.exception("layer %s: unexpected error on second read", layer.digest)
            self.warnings.add("layer-error")

    def _run_deferred(self, tf: tarfile.TarFile, member: tarfile.TarInfo, job: _Deferred) -> None:
        f = tf.extractfile(member)
        if f is None:
            return
        size = int(member.size)
        with tempfile.SpooledTemporaryFile(max_size=self.limits.spool_memory) as spool:
            copied = 0
            need = size if job.analyzers else min(size, job.keep or 0)
            while copied < need:
                chunk = f.read(min(_CHUNK, need - copied))
                if not chunk:
                    break
                spool.write(chunk)
                copied += len(chunk)
            if job.keep and job.content_entries:
                if self._kept_total + min(job.keep, copied) > self.limits.max_kept_total:
                    self.warnings.add("kept-content-limit")
                else:
                    spool.seek(0)
                    data = spool.read(job.keep)
                    self._kept_total += len(data)
                    for entry in job.content_entries:
                        entry.content = data
                        entry.content_truncated = entry.size > len(data)
            for analyzer, entry in job.analyzers:
                spool.seek(0)
                try:
                    result = analyzer.analyze_file(spool, copied)  # type: ignore[arg-type]
                except Exception:
                    self.warnings.add(f"analyzer-error:{analyzer.name}")
                    continue
                if result is not None:
                    if entry.analysis is None:
                        entry.analysis = {}
                    entry.analysis[analyzer.name] = result

    # ----------------------------------------------------------------- queries

    @staticmethod
    def _split(path: str) -> list[str]:
        return [p for p in path.split("/") if p not in ("", ".")]

    def _resolve_parts(
        self, parts: list[str], follow_final: bool
    ) -> tuple[tuple[str, ...], _Node] | None:
        pending = list(reversed(parts))
        cur: list[str] = []
        nodes: list[_Node] = [self._root]
        followed = 0
        while pending:
            name = pending.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if not cur:
                    return None  # climbs out of the image
                cur.pop()
                nodes.pop()
                continue
            children = nodes[-1].children
            child = children.get(name) if children is not None else None
            if child is None:
                return None
            entry = child.entry
            if entry is not None and entry.kind == SYMLINK and (pending or follow_final):
                followed += 1
                if followed > self.limits.max_link_depth:
                    self.warnings.add("link-too-deep")
                    return None
                target = entry.linkname or ""
                if target.startswith("/"):
                    cur, nodes = [], [self._root]
                pending.extend(reversed(target.split("/")))
                continue
            cur.append(name)
            nodes.append(child)
        return tuple(cur), nodes[-1]

    def lstat(self, path: str) -> FileEntry | None:
        """The entry at ``path``; symlinks in the parent directories are followed,
        a symlink at ``path`` itself is returned as is."""
        found = self._resolve_parts(self._split(path), follow_final=False)
        return found[1].entry if found is not None else None

    def stat(self, path: str) -> FileEntry | None:
        """The entry ``path`` leads to, following symlinks inside the image;
        None when it leads nowhere (missing, outside the root, a loop)."""
        found = self._resolve_parts(self._split(path), follow_final=True)
        if found is None:
            return None
        entry = found[1].entry
        if entry is None and found[1].children is not None and found[0]:
            return None  # an implicit directory has no entry of its own
        return entry

    def realpath(self, path: str) -> str | None:
        """The canonical path ``path`` leads to, or None."""
        found = self._resolve_parts(self._split(path), follow_final=True)
        return "/".join(found[0]) if found is not None else None

    def is_dir(self, path: str) -> bool:
        found = self._resolve_parts(self._split(path), follow_final=True)
        return found is not None and found[1].children is not None

    def read(self, path: str) -> bytes | None:
        """The kept content of the regular file ``path`` leads to, or None if it is
        not a regular file or its content was not kept."""
        entry = self.stat(path)
        if entry is None:
            return None
        return entry.data_entry.content

    def listdir(self, path: str) -> list[str]:
        """Names in the directory ``path`` leads to (sorted; [] if not a directory)."""
        found = self._resolve_parts(self._split(path), follow_final=True)
        if found is None or found[1].children is None:
            return []
        return sorted(found[1].children)

    def iter_entries(self) -> Iterator[FileEntry]:
        """Every entry of the final tree, depth first in name order, links not followed."""
        stack: list[_Node] = [self._root]
        while stack:
            node = stack.pop()
            if node.entry is not None:
                yield node.entry
            if node.children:
                stack.extend(node.children[k] for k in sorted(node.children, reverse=True))

    def history(self, path: str) -> list[FileEntry | None]:
        """The kept versions of the regular file at canonical ``path``, lowest layer
        first; None marks a deletion (whiteout or replacement by another kind)."""
        return list(self._history.get(path, ()))

    def __len__(self) -> int:
        return self._entries
