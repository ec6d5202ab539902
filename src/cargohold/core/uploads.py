"""Upload sessions: bytes are hashed while they stream to storage, verified at the end.

Hash state lives in the process that received the previous chunk. When a chunk lands on
another worker process, that worker rebuilds the state by reading back what the upload
holds, so correctness never depends on which worker a request reaches.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cargohold.digest import SUPPORTED_ALGORITHMS, Digest, new_hasher
from cargohold.errors import (
    BlobTooLarge,
    BlobUploadUnknown,
    DigestInvalid,
    QuotaExceeded,
    RangeInvalid,
    SizeInvalid,
    TooManyRequests,
)
from cargohold.reference import validate_name
from cargohold.storage.blobs import BlobStore, UploadOffsetMismatch, UploadWriter
from cargohold.storage.meta import MetadataStore, UploadRecord

# Bytes gathered before one write+hash step runs in a worker thread.
WRITE_BUFFER = 4 * 1024 * 1024
# A closing chunk up to this size is read whole, then stored, verified and committed in one
# worker thread (configs and small layers: one hand-off instead of a dozen).
SMALL_BODY = 256 * 1024
_HASH_CACHE_SIZE = 512
# How long a request waits for an upload another request holds, and how often it looks.
BUSY_WAIT = 1.0
BUSY_POLL = 0.02
# What start() issues: a UUID, optionally after its owner's tag (the stores allow the same).
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


@dataclass(frozen=True, slots=True)
class UploadStatus:
    upload_id: str
    repository: str
    offset: int


class _HashState:
    __slots__ = ("hasher", "offset")

    def __init__(self, hasher: hashlib._Hash, offset: int) -> None:
        self.hasher = hasher
        self.offset = offset


class UploadService:
    """Upload sessions, with two optional limits (0: none).

    `max_size`: bytes one upload may hold; past it the upload is discarded (BlobTooLarge).
    `max_per_owner`: open sessions one owner (a user, or an anonymous address) may hold.
    """

    def __init__(
        self, blobs: BlobStore, meta: MetadataStore, max_size: int = 0, max_per_owner: int = 0
    ) -> None:
        self._blobs = blobs
        self._meta = meta
        self._hashes: OrderedDict[str, _HashState] = OrderedDict()
        self.max_size = max_size
        self.max_per_owner = max_per_owner

    # -- session lifecycle (sync: called from a worker thread)
    def start(
        self, repository: str, algorithm: str = "sha256", owner: str | None = None
    ) -> UploadStatus:
        validate_name(repository)
        if algorithm not in SUPPORTED_ALGORITHMS:
            raise DigestInvalid(
                f"unsupported digest algorithm {algorithm!r}: use one of "
                + ", ".join(SUPPORTED_ALGORITHMS)
            )
        upload_id = str(uuid.uuid4())
        if owner is not None and self.max_per_owner:
            # The owner's tag in the ID lets every worker and replica count an owner's
            # sessions from the shared uploads table alone.
            self._refuse_too_many(owner)
            upload_id = f"{_owner_tag(owner)}-{upload_id}"
        self._blobs.start_upload(upload_id)
        self._meta.create_upload(UploadRecord(upload_id, repository, algorithm, datetime.now(UTC)))
        self._remember(upload_id, _HashState(new_hasher(algorithm), 0))
        return UploadStatus(upload_id, repository, 0)

    def status(self, repository: str, upload_id: str) -> UploadStatus:
        self._session(repository, upload_id)
        size = self._blobs.upload_size(upload_id)
        if size is None:
            raise BlobUploadUnknown(f"upload {upload_id} has no data")
        return UploadStatus(upload_id, repository, size)

    def cancel(self, repository: str, upload_id: str) -> None:
        self._session(repository, upload_id)
        self._drop(upload_id)

    # -- streaming (async: the body arrives from the network)
    async def append(
        self,
        repository: str,
        upload_id: str,
        chunks: AsyncIterator[bytes],
        start: int | None = None,
        length: int | None = None,
        digest: str | None = None,
    ) -> UploadStatus:
        """Append a chunk; `start` (from Content-Range) must equal the bytes held so far.

        A chunk of announced `length` that the namespace's quota cannot take is refused
        before it is read, and the upload cancelled (`digest`: of the whole blob, when the
        chunk is the last one).
        """
        record, offset = await asyncio.to_thread(
            self._accept_chunk, repository, upload_id, start, length, digest
        )
        writer = await self._lock(upload_id, offset)
        try:
            state = await asyncio.to_thread(self._hash_state, record, offset)
        except BaseException:
            await asyncio.to_thread(writer.close)
            raise
        received = 0
        try:
            try:
                room = self.max_size - offset if self.max_size else None
                received = await _pump(chunks, writer, state.hasher, room)
                if length is not None and received != length:
                    raise SizeInvalid(
                        f"received {received} bytes but the request announced {length}"
                    )
            except BaseException:
                # A broken chunk leaves the upload as it was before the request.
                self._hashes.pop(upload_id, None)
                await asyncio.to_thread(writer.abort)
                raise
            finally:
                await asyncio.to_thread(writer.close)
        except BlobTooLarge:
            # It streamed past the limit without announcing its size: discard the upload.
            await asyncio.to_thread(self._drop, upload_id)
            raise
        state.offset = offset + received
        self._remember(upload_id, state)
        return UploadStatus(upload_id, repository, state.offset)

    async def finish(
        self,
        repository: str,
        upload_id: str,
        digest: str,
        chunks: AsyncIterator[bytes] | None = None,
        start: int | None = None,
        length: int | None = None,
    ) -> str:
        """Take an optional last chunk, verify the digest, and commit the blob."""
        expected = Digest.parse(digest)
        if chunks is not None and length is not None and length <= SMALL_BODY:
            data = await _read_exactly(chunks, length)
            return await asyncio.to_thread(
                self._finish_small, repository, upload_id, expected, data, start
            )
        if chunks is not None:
            await self.append(repository, upload_id, chunks, start, length, str(expected))
        record, size = await asyncio.to_thread(self._session_and_size, repository, upload_id)
        # Hold the upload while verifying and committing, so no append slips in between.
        writer = await self._lock(upload_id, size)
        try:
            state = await asyncio.to_thread(self._hash_state, record, size, expected.algorithm)
            await asyncio.to_thread(self._verify_and_commit, record, state, expected, size)
        finally:
            await asyncio.to_thread(writer.close)
        return str(expected)

    def _finish_small(
        self,
        repository: str,
        upload_id: str,
        expected: Digest,
        data: bytes,
        start: int | None,
    ) -> str:
        """finish() for a closing chunk already in memory, in one worker thread."""
        # The quota is checked once, by the commit: the early check only spares storing
        # bytes that would be refused, and these few are in memory already.
        record, offset = self._accept_chunk(
            repository, upload_id, start, len(data), str(expected), check_quota=False
        )
        size = offset + len(data)
        writer = self._open(upload_id, offset)
        try:
            state = self._hash_state(record, offset, expected.algorithm)
            try:
                writer.write(data)
                writer.flush()  # the commit below reads the upload as stored
                state.hasher.update(data)
            except BaseException:
                self._hashes.pop(upload_id, None)
                writer.abort()
                raise
            state.offset = size
            self._verify_and_commit(record, state, expected, size)
        finally:
            writer.close()
        return str(expected)

    def _verify_and_commit(
        self, record: UploadRecord, state: _HashState, expected: Digest, size: int
    ) -> None:
        actual = state.hasher.hexdigest()
        if actual != expected.encoded:
            self._drop(record.upload_id)
            raise DigestInvalid(
                f"uploaded content has digest {expected.algorithm}:{actual}, not {expected}",
                detail={"expected": str(expected), "actual": f"{expected.algorithm}:{actual}"},
            )
        self._commit(record, str(expected), size)

    async def upload_whole(
        self,
        repository: str,
        digest: str,
        chunks: AsyncIterator[bytes],
        length: int | None,
        owner: str | None = None,
    ) -> str:
        """The single-POST monolithic push: one request carries the whole blob.

        With a known `length`, a blob over the size limit or the namespace's quota is
        refused before anything is read or stored."""
        parsed = Digest.parse(digest)
        algorithm = parsed.algorithm
        if length is not None:
            validate_name(repository)
            self._check_size(length)
            await asyncio.to_thread(self._meta.check_quota, repository, length, str(parsed))
        status = await asyncio.to_thread(self.start, repository, algorithm, owner)
        try:
            return await self.finish(repository, status.upload_id, digest, chunks, 0, length)
        except BaseException:
            await asyncio.to_thread(self._drop, status.upload_id)
            raise

    # -- helpers
    async def _lock(self, upload_id: str, offset: int) -> UploadWriter:
        """Take the upload for this request; it must hold exactly `offset` bytes."""
        return await asyncio.to_thread(self._open, upload_id, offset)

    def _open(self, upload_id: str, offset: int) -> UploadWriter:
        deadline = time.monotonic() + BUSY_WAIT
        try:
            while True:
                try:
                    return self._blobs.open_upload(upload_id, offset)
                except UploadOffsetMismatch as exc:
                    # A request that is ending (a broken one rolling back its chunk, say)
                    # lets go in moments: wait for it rather than refuse the next one.
                    if not exc.busy or time.monotonic() >= deadline:
                        raise
                time.sleep(BUSY_POLL)
        except UploadOffsetMismatch as exc:
            raise RangeInvalid(
                "another request is writing to this upload, or it moved on",
                upload_id,
                exc.actual,
            ) from None
        except FileNotFoundError:
            raise BlobUploadUnknown(f"upload {upload_id} is not known") from None

    def _session(self, repository: str, upload_id: str) -> UploadRecord:
        validate_name(repository)
        # IDs are ours (hex, dashes): anything else was never issued, and must not reach
        # the database (PostgreSQL cannot compare text holding NUL).
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise BlobUploadUnknown(f"upload {upload_id[:80]!r} is not known in {repository}")
        record = self._meta.get_upload(upload_id)
        if record is None or record.repository != repository:
            raise BlobUploadUnknown(f"upload {upload_id} is not known in {repository}")
        return record

    def _accept_chunk(
        self,
        repository: str,
        upload_id: str,
        start: int | None,
        length: int | None,
        digest: str | None,
        check_quota: bool = True,
    ) -> tuple[UploadRecord, int]:
        """The session and its size, if a chunk starting at `start` (Content-Range) and
        announcing `length` bytes may be appended: it must start where the upload ends, and
        fit the size limit and the namespace's quota (else the upload is discarded)."""
        record, offset = self._session_and_size(repository, upload_id)
        if start is not None and start != offset:
            raise RangeInvalid(
                f"chunk starts at byte {start} but the upload holds {offset} bytes",
                upload_id,
                offset,
            )
        if length is not None:
            self._refuse_too_large(upload_id, offset + length)
            if check_quota:
                self._refuse_over_quota(repository, upload_id, offset + length, digest)
        return record, offset

    def _session_and_size(self, repository: str, upload_id: str) -> tuple[UploadRecord, int]:
        record = self._session(repository, upload_id)
        size = self._blobs.upload_size(upload_id)
        if size is None:
            raise BlobUploadUnknown(f"upload {upload_id} has no data")
        return record, size

    def _hash_state(
        self, record: UploadRecord, offset: int, algorithm: str | None = None
    ) -> _HashState:
        algorithm = algorithm or record.algorithm
        state = self._hashes.get(record.upload_id)
        if state is not None and state.offset == offset and state.hasher.name == algorithm:
            return state
        # Another worker took the previous chunk, or the client changed algorithm.
        hasher = new_hasher(algorithm)
        remaining = offset
        for data in self._blobs.read_upload(record.upload_id):
            hasher.update(data[:remaining])
            remaining -= len(data)
            if remaining <= 0:
                break
        return _HashState(hasher, offset)

    def _commit(self, record: UploadRecord, digest: str, size: int) -> None:
        # The slow flush happens here, outside commit_blob's lock (the whole database on
        # SQLite), so concurrent pushes wait for one another's renames only.
        self._blobs.flush_upload(record.upload_id)
        try:
            self._meta.commit_blob(
                record.repository,
                digest,
                size,
                lambda: self._blobs.commit_upload(record.upload_id, digest),
                lambda: self._blobs.delete(digest),
                finished_upload=record.upload_id,
            )
        except QuotaExceeded:
            self._drop(record.upload_id)  # a refused push leaves nothing behind
            raise
        self._hashes.pop(record.upload_id, None)

    def _refuse_over_quota(
        self, repository: str, upload_id: str, size: int, digest: str | None
    ) -> None:
        """Cancel the upload if the namespace's quota cannot take `size` bytes."""
        try:
            self._meta.check_quota(repository, size, digest)
        except QuotaExceeded:
            self._drop(upload_id)
            raise

    def _check_size(self, size: int) -> None:
        if self.max_size and size > self.max_size:
            raise BlobTooLarge(
                f"the upload would hold {size} bytes; this registry takes blobs of at most "
                f"{self.max_size} bytes",
                detail={"size": size, "limit": self.max_size},
            )

    def _refuse_too_large(self, upload_id: str, size: int) -> None:
        """Discard the upload if announcing `size` bytes takes it over the size limit."""
        try:
            self._check_size(size)
        except BlobTooLarge:
            self._drop(upload_id)
            raise

    def _refuse_too_many(self, owner: str) -> None:
        # Every session, whatever its age (GC removes abandoned ones after
        # upload_max_age_hours); a soft limit: two racing starts may both pass.
        prefix = f"{_owner_tag(owner)}-"
        everything = datetime.now(UTC) + timedelta(days=1)
        held = sum(
            1
            for record in self._meta.uploads_older_than(everything)
            if record.upload_id.startswith(prefix)
        )
        if held >= self.max_per_owner:
            raise TooManyRequests(
                f"{owner} already has {held} open upload sessions, the most this registry "
                "allows at once: finish or cancel one (DELETE its location) and retry",
                detail={"open": held, "limit": self.max_per_owner},
            )

    def _drop(self, upload_id: str) -> None:
        self._hashes.pop(upload_id, None)
        self._blobs.cancel_upload(upload_id)
        self._meta.delete_upload(upload_id)

    def _remember(self, upload_id: str, state: _HashState) -> None:
        self._hashes[upload_id] = state
        self._hashes.move_to_end(upload_id)
        while len(self._hashes) > _HASH_CACHE_SIZE:
            self._hashes.popitem(last=False)


def _write_all(writer: UploadWriter, pieces: list[bytes]) -> None:
    for piece in pieces:
        writer.write(piece)


def _hash_all(hasher: hashlib._Hash, pieces: list[bytes]) -> None:
    for piece in pieces:
        hasher.update(piece)


async def _read_exactly(chunks: AsyncIterator[bytes], length: int) -> bytes:
    """The whole body, which must be `length` bytes long (its Content-Length)."""
    pieces = []
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > length:
            break
        pieces.append(chunk)
    if received != length:
        raise SizeInvalid(f"received {received} bytes but the request announced {length}")
    return b"".join(pieces)


def _owner_tag(owner: str) -> str:
    return hashlib.sha256(owner.encode()).hexdigest()[:16]


async def _pump(
    chunks: AsyncIterator[bytes],
    writer: UploadWriter,
    hasher: hashlib._Hash,
    room: int | None = None,
) -> int:
    """Move the request body to storage in large steps, hashing on the way.

    Three things overlap: the event loop receives the next step while one worker thread
    hashes the previous step and another writes it (hashlib and file writes release the
    GIL), so a push is bounded by the slowest of the three, not their sum. The chunks are
    handed over as received, never copied. More than `room` bytes (when given) raise
    BlobTooLarge before the excess is written."""
    pieces: list[bytes] = []
    gathered = 0
    total = 0
    step: list[asyncio.Future[None]] = []
    try:
        async for chunk in chunks:
            if not chunk:
                continue
            total += len(chunk)
            if room is not None and total > room:
                raise BlobTooLarge(
                    f"the blob grew past this registry's maximum upload size ({room} more "
                    "bytes fitted); the upload is discarded",
                    detail={"limit_remaining": room},
                )
            pieces.append(chunk)
            gathered += len(chunk)
            if gathered >= WRITE_BUFFER:
                await _finished(step)  # one step in flight: memory stays bounded, order kept
                step = _store_step(writer, hasher, pieces)
                pieces, gathered = [], 0
        if pieces:
            await _finished(step)
            step = _store_step(writer, hasher, pieces)
        await _finished(step)
    finally:
        running = [future for future in step if not future.done()]
        if running:
            # The caller rolls the upload back next; no write may land after that.
            await asyncio.wait(running)
    return total


async def _finished(step: list[asyncio.Future[None]]) -> None:
    for future in step:
        await future


def _store_step(
    writer: UploadWriter, hasher: hashlib._Hash, pieces: list[bytes]
) -> list[asyncio.Future[None]]:
    return [
        asyncio.ensure_future(asyncio.to_thread(_hash_all, hasher, pieces)),
        asyncio.ensure_future(asyncio.to_thread(_write_all, writer, pieces)),
    ]
