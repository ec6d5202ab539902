"""The BlobStore protocol: content-addressed bytes, and the upload sessions that fill them.

A backend stores bytes and nothing else: which repository may see a blob, and whether a
digest was verified, are decisions of the core, recorded in the metadata store.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol


class UploadOffsetMismatch(Exception):
    """An append did not start where the upload's data ends (or the upload is busy)."""

    def __init__(self, actual: int, busy: bool = False) -> None:
        held = ", another writer has it" if busy else ""
        super().__init__(f"upload holds {actual} bytes{held}")
        self.actual = actual
        self.busy = busy  # another request holds the session's lock


class UploadWriter(Protocol):
    """Appends to one upload session; the caller must call close() (or use `with`)."""

    def write(self, data: bytes) -> None: ...

    def flush(self) -> None:
        """Make what was written so far part of the upload, as close() would, while
        keeping the upload held (S3: send the spooled bytes as a part)."""

    def abort(self) -> None:
        """Discard what this writer appended, leaving the upload as it was opened."""

    def close(self) -> None: ...

    def __enter__(self) -> UploadWriter: ...

    def __exit__(self, *exc: object) -> None: ...


class BlobStore(Protocol):
    def stat(self, digest: str) -> int | None:
        """Size of a committed blob, or None when the store does not hold it."""

    def local_path(self, digest: str) -> Path | None:
        """A file path for zero-copy serving, or None when the backend has no local file.

        The path is only valid while the blob exists; callers must tolerate it vanishing.
        """

    def redirect_url(self, digest: str, expires: int = 300) -> str | None:
        """A URL where clients may fetch the blob directly (presigned), or None."""

    def read(self, digest: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream a committed blob's bytes from `offset`; FileNotFoundError if absent."""

    def delete(self, digest: str) -> bool:
        """Remove a committed blob; False when it was not there."""

    def delete_many(self, digests: Sequence[str]) -> None:
        """Remove committed blobs, those not there included (garbage collection's batches:
        S3 deletes up to 1,000 keys per request, a filesystem several files at once)."""

    def digests(self) -> Iterator[str]:
        """Every committed blob's digest, in no particular order."""

    def start_upload(self, upload_id: str) -> None:
        """Create empty temporary storage for an upload session."""

    def upload_size(self, upload_id: str) -> int | None:
        """Bytes received so far, or None when the session does not exist."""

    def open_upload(self, upload_id: str, offset: int) -> UploadWriter:
        """Open the session for appending at `offset`.

        Raises UploadOffsetMismatch when the session holds a different number of bytes or
        another writer holds it, FileNotFoundError when it does not exist.
        """

    def read_upload(self, upload_id: str) -> Iterator[bytes]:
        """Stream the bytes received so far (used to rebuild hash state)."""

    def flush_upload(self, upload_id: str) -> None:
        """Make the bytes received so far durable. Every commit_upload is preceded by it,
        called outside the metadata store's locks, so that the commit (under them) only
        publishes what is on disk already."""

    def commit_upload(self, upload_id: str, digest: str) -> None:
        """Durably move the upload's bytes (flushed by flush_upload) to `digest` and end
        the session.

        The caller has verified the digest. After this returns the blob survives a crash.
        When the blob already exists the stored copy is kept.
        """

    def cancel_upload(self, upload_id: str) -> None:
        """Remove the session and its temporary data; no error if it is already gone."""

    def upload_ids(self) -> Iterator[str]:
        """Every upload session that holds temporary data."""

    def upload_touched_at(self, upload_id: str) -> datetime | None:
        """When the session last received bytes (or began); None if it has no data."""

    def purge_incomplete(self, older_than: datetime) -> int:
        """Remove storage-level leftovers of interrupted commits (S3 multipart uploads)
        started before `older_than`; how many."""

    def check(self) -> None:
        """Raise when the store cannot take writes now (for readiness probes)."""
