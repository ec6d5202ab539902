"""Filesystem BlobStore: blobs/<algorithm>/<2 hex>/<encoded>, uploads/<id>.

Writes are durable before they are visible: the upload file is fsynced, renamed into
place atomically, and the directory is fsynced.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import os
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from cargohold.storage.blobs.base import UploadOffsetMismatch

_SYNC_FILE_RANGE_WRITE = 2
_sync_file_range = getattr(ctypes.CDLL(None, use_errno=True), "sync_file_range", None)
if _sync_file_range is not None:
    _sync_file_range.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)

READ_CHUNK = 1024 * 1024
# Bytes an upload gathers before its writer starts writing them out to disk, so that the
# commit's fsync waits for the last few MiB only, not the whole blob.
SYNC_EVERY = 8 * 1024 * 1024
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class _FileUploadWriter:
    """Holds an exclusive lock on the upload file for the length of one request."""

    def __init__(self, path: Path, offset: int) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise UploadOffsetMismatch(path.stat().st_size, busy=True) from None
        size = os.fstat(self._fd).st_size
        if size != offset:
            os.close(self._fd)
            raise UploadOffsetMismatch(size)
        self._start = offset
        self._unsynced = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._unsynced += len(data)
        if self._unsynced >= SYNC_EVERY:
            _start_writeback(self._fd)
            self._unsynced = 0

    def flush(self) -> None:
        pass  # every write went to the upload file already

    def abort(self) -> None:
        if self._fd >= 0:
            os.ftruncate(self._fd, self._start)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing releases the flock
            self._fd = -1

    def __enter__(self) -> _FileUploadWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FilesystemBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._blobs = root / "blobs"
        self._blobs_dir = str(self._blobs)
        self._uploads = root / "uploads"
        for folder in (self._blobs / "sha256", self._blobs / "sha512", self._uploads):
            folder.mkdir(parents=True, exist_ok=True)

    # -- paths: every on-disk location is decided here
    def _blob_path(self, digest: str) -> Path:
        return Path(self._blob_file(digest))

    def _blob_file(self, digest: str) -> str:
        # A string, not a Path: joining Paths costs more than the unlink that GC does
        # with it (profiled over 5,000 deletions).
        algorithm, _, encoded = digest.partition(":")
        if not algorithm.isalnum() or not encoded.isalnum():
            raise ValueError(f"not a digest: {digest!r}")  # the core validates first
        return f"{self._blobs_dir}/{algorithm}/{encoded[:2]}/{encoded}"

    def _upload_path(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.match(upload_id):
            raise FileNotFoundError(upload_id)
        return self._uploads / upload_id

    # -- committed blobs
    def stat(self, digest: str) -> int | None:
        try:
            return self._blob_path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def local_path(self, digest: str) -> Path | None:
        return self._blob_path(digest)

    def redirect_url(self, digest: str, expires: int = 300) -> str | None:
        return None  # files are served by the registry itself

    def read(self, digest: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        return _read_file(self._blob_path(digest), offset, length)

    def delete(self, digest: str) -> bool:
        try:
            os.unlink(self._blob_file(digest))
        except FileNotFoundError:
            return False
        return True

    def delete_many(self, digests: Sequence[str]) -> None:
        # A few unlinks at a time: one costs ~40 µs of kernel time here, and four
        # threads took a quarter off 5,000 of them (more bought nothing).
        paths = [self._blob_file(digest) for digest in digests]
        if len(paths) < 8:
            for path in paths:
                _unlink_if_there(path)
            return
        list(_unlinkers().map(_unlink_if_there, paths))

    def digests(self) -> Iterator[str]:
        for algorithm_dir in sorted(self._blobs.iterdir()):
            for prefix_dir in sorted(algorithm_dir.iterdir()):
                for blob in sorted(prefix_dir.iterdir()):
                    yield f"{algorithm_dir.name}:{blob.name}"

    # -- upload sessions
    def start_upload(self, upload_id: str) -> None:
        path = self._upload_path(upload_id)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)

    def upload_size(self, upload_id: str) -> int | None:
        try:
            return self._upload_path(upload_id).stat().st_size
        except FileNotFoundError:
            return None

    def open_upload(self, upload_id: str, offset: int) -> _FileUploadWriter:
        return _FileUploadWriter(self._upload_path(upload_id), offset)

    def read_upload(self, upload_id: str) -> Iterator[bytes]:
        return _read_file(self._upload_path(upload_id), 0, None)

    def flush_upload(self, upload_id: str) -> None:
        fd = os.open(self._upload_path(upload_id), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def commit_upload(self, upload_id: str, digest: str) -> None:
        # The bytes were made durable by flush_upload, outside the caller's locks.
        source = self._upload_path(upload_id)
        target = self._blob_path(digest)
        if not source.exists():
            raise FileNotFoundError(upload_id)
        if target.exists():
            source.unlink()  # identical content is already durable; keep that copy
            return
        if not target.parent.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            # The new prefix directory's own entry must be durable too.
            _fsync_dir(target.parent.parent)
        os.replace(source, target)
        _fsync_dir(target.parent)

    def cancel_upload(self, upload_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._upload_path(upload_id).unlink()

    def upload_ids(self) -> Iterator[str]:
        for path in self._uploads.iterdir():
            yield path.name

    def upload_touched_at(self, upload_id: str) -> datetime | None:
        try:
            mtime = self._upload_path(upload_id).stat().st_mtime
        except FileNotFoundError:
            return None
        return datetime.fromtimestamp(mtime, UTC)

    def purge_incomplete(self, older_than: datetime) -> int:
        return 0  # a commit is one rename: nothing half-done can be left behind

    def check(self) -> None:
        probe = self._uploads / f".ready-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()


def _read_file(path: Path, offset: int, length: int | None) -> Iterator[bytes]:
    # Opened eagerly so a missing file raises here, not on first iteration.
    handle = path.open("rb")

    def chunks() -> Iterator[bytes]:
        with handle:
            handle.seek(offset)
            remaining = length
            while remaining is None or remaining > 0:
                size = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                data = handle.read(size)
                if not data:
                    return
                if remaining is not None:
                    remaining -= len(data)
                yield data

    return chunks()


def _start_writeback(fd: int) -> None:
    """Ask the kernel to start writing the file's dirty pages out, without waiting.

    Linux's sync_file_range(SYNC_FILE_RANGE_WRITE); elsewhere the commit's fsync does it
    all. The disk then works while the rest of the body arrives."""
    if _sync_file_range is not None:
        _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_if_there(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@functools.cache
def _unlinkers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(4, thread_name_prefix="unlink")
