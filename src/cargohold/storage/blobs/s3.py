"""S3-compatible BlobStore.

Layout under `<prefix>/`:

    blobs/<algorithm>/<2 hex>/<encoded>     committed blobs
    uploads/<id>/.session                    marker: the session exists
    uploads/<id>/.lock                       the writer currently holding the session
    uploads/<id>/<offset:020d>               the bytes one writer appended, starting at offset

A writer spools its request body to a local temporary file and uploads it as one part
object when it closes (very large bodies roll over into several part objects), so no blob
is ever held in memory. The session's size is the sum of its part objects. One writer at
a time holds the session's lock (locks.py: Redis when configured, else S3ObjectLocks, a
conditional create of the lock object, renewed while held and taken over `lock_ttl` after
its holder stopped renewing it), and part objects are created with `If-None-Match: *`, so
a writer never overwrites another's bytes.
Commit assembles the parts server-side where S3 allows it (CopyObject, UploadPartCopy)
and streams only the parts below S3's 5 MiB minimum part size.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

from cargohold.storage.blobs.base import UploadOffsetMismatch
from cargohold.storage.blobs.locks import LOCK_TTL, LeaseKeeper, UploadLocks

READ_CHUNK = 1024 * 1024
MIN_PART = 5 * 1024 * 1024  # S3's smallest multipart part (except the last)
MAX_COPY = 5 * 1024**3  # S3's largest CopyObject / UploadPartCopy source range
MAX_PARTS = 10_000
COMBINED_PART = 8 * 1024 * 1024  # target size of a part stream-combined from small ones
SPOOL_LIMIT = 512 * 1024 * 1024  # a writer's spool rolls over into a new part object here
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_SESSION = ".session"
_LOCK = ".lock"


@dataclass(frozen=True, slots=True)
class _Part:
    key: str
    offset: int
    size: int


@dataclass(slots=True)
class _Session:
    exists: bool
    parts: list[_Part]
    keys: list[str]  # every object under the session's folder

    @property
    def size(self) -> int:
        return sum(part.size for part in self.parts)


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _is_missing(exc: Exception) -> bool:
    return _error_code(exc) in {"404", "NoSuchKey", "NotFound"}


def _is_precondition_failed(exc: Exception) -> bool:
    # 409 ConditionalRequestConflict: a concurrent conditional write won on AWS.
    return _error_code(exc) in {"412", "PreconditionFailed", "ConditionalRequestConflict"}


class _S3UploadWriter:
    """Holds the session's lock object for the length of one request."""

    def __init__(self, store: S3BlobStore, upload_id: str, offset: int) -> None:
        self._store = store
        self._upload_id = upload_id
        self._start = offset
        self._next_offset = offset  # where the current spool's bytes will start
        self._lock_token = store._acquire_lock(upload_id)
        token = self._lock_token
        self._lease = LeaseKeeper(
            lambda: store.locks.renew(upload_id, token), max(store.locks.ttl / 3, 0.05)
        )
        self._closed = False
        self._flushed: list[str] = []  # part objects this writer uploaded already
        try:
            session = store._session(upload_id)
            if not session.exists:
                raise FileNotFoundError(upload_id)
            if session.size != offset:
                raise UploadOffsetMismatch(session.size)
            # Lives as long as the writer; closed in close().
            self._spool: IO[bytes] = tempfile.TemporaryFile(dir=store.spool_dir)  # noqa: SIM115
        except BaseException:
            self._lease.stop()
            store._release_lock(upload_id, self._lock_token)
            raise
        self._spooled = 0

    def write(self, data: bytes) -> None:
        if self._closed:
            raise ValueError("write to a closed upload writer")
        self._spool.write(data)
        self._spooled += len(data)
        if self._spooled >= self._store.spool_limit:
            self._flush()

    def flush(self) -> None:
        if self._closed:
            raise ValueError("flush of a closed upload writer")
        self._flush()

    def _flush(self) -> None:
        """Upload the spool as one part object and start a fresh spool."""
        if self._spooled == 0:
            return
        store = self._store
        if self._lease.lost or not store._holds_lock(self._upload_id, self._lock_token):
            # Our lock was taken over as abandoned; the session is someone else's now.
            self._discard_spool()
            raise UploadOffsetMismatch(store._session(self._upload_id).size)
        key = store._part_key(self._upload_id, self._next_offset)
        self._spool.seek(0)
        try:
            store.client.put_object(
                Bucket=store.bucket,
                Key=key,
                Body=self._spool,
                ContentLength=self._spooled,
                IfNoneMatch="*",  # never overwrite bytes another writer placed
            )
        except Exception as exc:
            if _is_precondition_failed(exc):
                self._discard_spool()
                raise UploadOffsetMismatch(store._session(self._upload_id).size) from None
            raise
        self._flushed.append(key)
        self._next_offset += self._spooled
        self._discard_spool()

    def _discard_spool(self) -> None:
        self._spool.seek(0)
        self._spool.truncate()
        self._spooled = 0

    def abort(self) -> None:
        if self._closed:
            return
        self._discard_spool()
        if self._flushed:
            self._store._delete_keys(self._flushed)
            self._flushed.clear()
            self._next_offset = self._start

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            # A session cancelled (or committed) meanwhile gets no new bytes.
            if self._spooled and self._store._session_exists(self._upload_id):
                self._flush()
        finally:
            self._spool.close()
            self._lease.stop()
            self._store._release_lock(self._upload_id, self._lock_token)

    def __enter__(self) -> _S3UploadWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class S3ObjectLocks:
    """Upload locks made of conditional writes of `uploads/<id>/.lock`; the token is the
    lock object's ETag. For S3 services without Redis configured."""

    def __init__(self, store: S3BlobStore, ttl: float = LOCK_TTL) -> None:
        self._store = store
        self._ttl = ttl
        # What each held lock object contains, to rewrite it on renewal; and the ETag a
        # renewal gave it, where the service computes a new one for the same bytes.
        self._bodies: dict[str, bytes] = {}
        self._renamed: dict[str, str] = {}

    @property
    def ttl(self) -> float:
        return self._ttl

    def _key(self, upload_id: str) -> str:
        return self._store._session_folder(upload_id) + _LOCK

    def acquire(self, upload_id: str) -> str | None:
        store, key = self._store, self._key(upload_id)
        body = uuid.uuid4().hex.encode()  # a unique body gives every holder its own ETag
        try:
            response = store.client.put_object(
                Bucket=store.bucket, Key=key, Body=body, IfNoneMatch="*"
            )
            return self._held(str(response["ETag"]), body)
        except Exception as exc:
            if not _is_precondition_failed(exc):
                raise
        held = store._head(key)
        if held is not None:
            age = (datetime.now(UTC) - held["LastModified"]).total_seconds()
            if age > self._ttl:
                # Abandoned by a crashed writer: take it over unless someone else just did.
                with contextlib.suppress(Exception):
                    response = store.client.put_object(
                        Bucket=store.bucket, Key=key, Body=body, IfMatch=held["ETag"]
                    )
                    return self._held(str(response["ETag"]), body)
        return None

    def _held(self, token: str, body: bytes) -> str:
        self._bodies[token] = body
        return token

    def _etag(self, token: str) -> str:
        return self._renamed.get(token, token)

    def holds(self, upload_id: str, token: str) -> bool:
        held = self._store._head(self._key(upload_id))
        return held is not None and held["ETag"] == self._etag(token)

    def renew(self, upload_id: str, token: str) -> bool:
        """Rewrite the lock object (its age restarts) if it is still ours."""
        store = self._store
        body = self._bodies.get(token)
        if body is None:
            return False
        try:
            response = store.client.put_object(
                Bucket=store.bucket, Key=self._key(upload_id), Body=body, IfMatch=self._etag(token)
            )
        except Exception as exc:
            if _is_precondition_failed(exc) or _is_missing(exc):
                return False
            raise
        if str(response["ETag"]) != token:
            self._renamed[token] = str(response["ETag"])
        return True

    def release(self, upload_id: str, token: str) -> None:
        store = self._store
        etag = self._etag(token)
        self._bodies.pop(token, None)
        self._renamed.pop(token, None)
        try:
            # Only our own lock: one taken over as abandoned belongs to its new holder.
            store.client.delete_object(Bucket=store.bucket, Key=self._key(upload_id), IfMatch=etag)
        except Exception as exc:
            if not (_is_missing(exc) or _is_precondition_failed(exc)):
                raise


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        prefix: str,
        client: Any,
        *,
        spool_dir: str | Path | None = None,
        spool_limit: int = SPOOL_LIMIT,
        lock_ttl: float = LOCK_TTL,
        locks: UploadLocks | None = None,
    ) -> None:
        self.bucket = bucket
        prefix = prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.client = client
        self.spool_dir = None if spool_dir is None else str(spool_dir)
        if spool_limit < MIN_PART:
            raise ValueError(f"spool_limit must be at least {MIN_PART} bytes")
        self.spool_limit = spool_limit
        self.locks: UploadLocks = locks or S3ObjectLocks(self, lock_ttl)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> S3BlobStore:
        """`s3://bucket/prefix?endpoint=http://host:9000&region=us-east-1`.

        Credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID and friends).
        """
        import boto3
        from botocore.config import Config

        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an s3:// URL: {url!r}")
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        endpoint = query.get("endpoint") or None
        region = query.get("region") or os.environ.get("AWS_REGION") or None
        # Custom endpoints (MinIO, Ceph, moto) rarely serve virtual-hosted buckets.
        addressing = query.get("addressing", "path" if endpoint else "auto")
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name=region,
            config=Config(s3={"addressing_style": addressing}, retries={"mode": "standard"}),
        )
        return cls(parts.netloc, parts.path, client, **kwargs)

    # -- keys: every object name is decided here
    def _blob_key(self, digest: str) -> str:
        algorithm, _, encoded = digest.partition(":")
        if not algorithm.isalnum() or not encoded.isalnum():
            raise ValueError(f"not a digest: {digest!r}")  # the core validates first
        return f"{self.prefix}blobs/{algorithm}/{encoded[:2]}/{encoded}"

    def _uploads_root(self) -> str:
        return f"{self.prefix}uploads/"

    def _session_folder(self, upload_id: str) -> str:
        if not _UPLOAD_ID.match(upload_id):
            raise FileNotFoundError(upload_id)
        return f"{self._uploads_root()}{upload_id}/"

    def _part_key(self, upload_id: str, offset: int) -> str:
        return f"{self._session_folder(upload_id)}{offset:020d}"

    # -- small S3 helpers
    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Contents", ())

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _is_missing(exc):
                return None
            raise

    def _delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            response = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )
            errors = response.get("Errors")
            if errors:
                raise OSError(f"could not delete {len(errors)} objects: {errors[0]}")

    def _stream(self, key: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Open a (ranged) GET now, so a missing object raises here; stream it lazily."""
        if length == 0:
            if self._head(key) is None:
                raise FileNotFoundError(key)
            return iter(())
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            request["Range"] = f"bytes={offset}-{end}"
        try:
            body = self.client.get_object(**request)["Body"]
        except Exception as exc:
            if _is_missing(exc):
                raise FileNotFoundError(key) from None
            if _error_code(exc) in {"InvalidRange", "416"}:
                return iter(())  # the object exists; the range starts past its end
            raise

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(READ_CHUNK)
            finally:
                body.close()

        return chunks()

    # -- committed blobs
    def stat(self, digest: str) -> int | None:
        head = self._head(self._blob_key(digest))
        return None if head is None else int(head["ContentLength"])

    def local_path(self, digest: str) -> Path | None:
        return None

    def read(self, digest: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        try:
            return self._stream(self._blob_key(digest), offset, length)
        except FileNotFoundError:
            raise FileNotFoundError(digest) from None

    def redirect_url(self, digest: str, expires: int = 300) -> str:
        """A presigned GET URL for a committed blob, valid for `expires` seconds."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._blob_key(digest)},
            ExpiresIn=expires,
        )

    def delete(self, digest: str) -> bool:
        key = self._blob_key(digest)
        if self._head(key) is None:
            return False
        self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def delete_many(self, digests: Sequence[str]) -> None:
        self._delete_keys([self._blob_key(digest) for digest in digests])

    def digests(self) -> Iterator[str]:
        root = f"{self.prefix}blobs/"
        for item in self._list(root):
            pieces = item["Key"][len(root) :].split("/")
            if len(pieces) == 3 and pieces[0].isalnum() and pieces[2].isalnum():
                yield f"{pieces[0]}:{pieces[2]}"

    # -- upload sessions
    def _session(self, upload_id: str) -> _Session:
        folder = self._session_folder(upload_id)
        session = _Session(exists=False, parts=[], keys=[])
        for item in self._list(folder):
            key = item["Key"]
            session.keys.append(key)
            name = key[len(folder) :]
            if name == _SESSION:
                session.exists = True
            elif len(name) == 20 and name.isdigit():
                session.parts.append(_Part(key, int(name), int(item["Size"])))
        session.parts.sort(key=lambda part: part.offset)
        expected = 0
        for part in session.parts:
            if part.offset != expected:
                raise OSError(f"upload {upload_id} has a gap or overlap at byte {expected}")
            expected += part.size
        return session

    def _session_exists(self, upload_id: str) -> bool:
        return self._head(self._session_folder(upload_id) + _SESSION) is not None

    def _acquire_lock(self, upload_id: str) -> str:
        """Lock the session for one writer; UploadOffsetMismatch when another holds it."""
        if not self._session_exists(upload_id):
            raise FileNotFoundError(upload_id)
        token = self.locks.acquire(upload_id)
        if token is None:
            raise UploadOffsetMismatch(self._session(upload_id).size, busy=True)
        return token

    def _holds_lock(self, upload_id: str, token: str) -> bool:
        return self.locks.holds(upload_id, token)

    def _release_lock(self, upload_id: str, token: str) -> None:
        self.locks.release(upload_id, token)

    def start_upload(self, upload_id: str) -> None:
        key = self._session_folder(upload_id) + _SESSION
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=b"", IfNoneMatch="*")
        except Exception as exc:
            if _is_precondition_failed(exc):
                raise FileExistsError(upload_id) from None
            raise

    def upload_size(self, upload_id: str) -> int | None:
        try:
            session = self._session(upload_id)
        except FileNotFoundError:
            return None
        return session.size if session.exists else None

    def open_upload(self, upload_id: str, offset: int) -> _S3UploadWriter:
        return _S3UploadWriter(self, upload_id, offset)

    def read_upload(self, upload_id: str) -> Iterator[bytes]:
        session = self._session(upload_id)
        if not session.exists:
            raise FileNotFoundError(upload_id)

        def chunks() -> Iterator[bytes]:
            for part in session.parts:
                yield from self._stream(part.key)

        return chunks()

    def flush_upload(self, upload_id: str) -> None:
        # Nothing to do: every part is durable once S3 acknowledged it, and the writer
        # sends its spool when closed. A missing session shows in commit_upload.
        return

    def commit_upload(self, upload_id: str, digest: str) -> None:
        session = self._session(upload_id)
        if not session.exists:
            raise FileNotFoundError(upload_id)
        target = self._blob_key(digest)
        if self._head(target) is None:
            self._assemble(session.parts, target)
        # The blob is durable now (S3 acknowledges writes only once stored); end the session.
        self._delete_keys(session.keys)
        # A writer still holding the session (the core holds one while committing) may
        # re-create nothing: its spool is empty and its lock release tolerates absence.

    def _assemble(self, parts: list[_Part], target: str) -> None:
        if not parts:
            self.client.put_object(Bucket=self.bucket, Key=target, Body=b"")
            return
        if len(parts) == 1 and parts[0].size <= MAX_COPY:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=target,
                CopySource={"Bucket": self.bucket, "Key": parts[0].key},
            )
            return
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=target)["UploadId"]
        try:
            completed = _MultipartAssembly(self, target, upload_id, parts).run()
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=target,
                UploadId=upload_id,
                MultipartUpload={"Parts": completed},
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=target, UploadId=upload_id
                )
            raise

    def cancel_upload(self, upload_id: str) -> None:
        try:
            folder = self._session_folder(upload_id)
        except FileNotFoundError:
            return
        keys = [item["Key"] for item in self._list(folder)]
        if keys:
            self._delete_keys(keys)

    def upload_ids(self) -> Iterator[str]:
        root = self._uploads_root()
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=root, Delimiter="/"):
            for common in page.get("CommonPrefixes", ()):
                yield common["Prefix"][len(root) :].rstrip("/")

    def upload_touched_at(self, upload_id: str) -> datetime | None:
        try:
            folder = self._session_folder(upload_id)
        except FileNotFoundError:
            return None
        times = [item["LastModified"] for item in self._list(folder)]
        return max(times) if times else None

    def purge_incomplete(self, older_than: datetime) -> int:
        """Abort multipart uploads of blobs that a crashed commit left open."""
        removed = 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}blobs/"):
            for upload in stale_multipart(page.get("Uploads", ()), older_than):
                with contextlib.suppress(Exception):
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    removed += 1
        return removed

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)


def stale_multipart(
    uploads: Iterable[dict[str, Any]], older_than: datetime
) -> list[dict[str, Any]]:
    """The multipart uploads started before `older_than` (younger ones may be commits
    in progress)."""
    return [upload for upload in uploads if upload["Initiated"] < older_than]


class _MultipartAssembly:
    """Turns upload parts into multipart parts: copies where S3 allows, streams the rest.

    Parts of at least 5 MiB are copied server-side (UploadPartCopy). Bytes that cannot
    stand alone as a part (a small part, or the head of a large one that tops up a small
    run) are streamed into a local spool file and uploaded once it reaches 5 MiB.
    """

    def __init__(self, store: S3BlobStore, key: str, upload_id: str, parts: list[_Part]) -> None:
        self._store = store
        self._key = key
        self._upload_id = upload_id
        self._parts = parts
        total = sum(part.size for part in parts)
        self._target = max(COMBINED_PART, math.ceil(total / (MAX_PARTS - 1000)))
        self._completed: list[dict[str, Any]] = []

    def run(self) -> list[dict[str, Any]]:
        with tempfile.TemporaryFile(dir=self._store.spool_dir) as pending:
            pending_size = 0
            for part in self._parts:
                pos = 0
                while pos < part.size:
                    remaining = part.size - pos
                    if pending_size >= MIN_PART and (
                        pending_size >= self._target or remaining >= MIN_PART
                    ):
                        self._upload_spool(pending, pending_size)
                        pending_size = 0
                        continue
                    if pending_size == 0 and remaining >= MIN_PART:
                        self._copy(part, pos, remaining)
                        pos = part.size
                        continue
                    # Top the spool up to 5 MiB from a large part, or take a small one whole.
                    take = remaining if remaining < MIN_PART else MIN_PART - pending_size
                    take = min(take, self._target - pending_size)
                    for data in self._store._stream(part.key, pos, take):
                        pending.write(data)
                    pending_size += take
                    pos += take
            if pending_size:
                self._upload_spool(pending, pending_size)
        return self._completed

    def _number(self) -> int:
        number = len(self._completed) + 1
        if number > MAX_PARTS:
            raise OSError(f"blob needs more than {MAX_PARTS} multipart parts")
        return number

    def _record(self, number: int, result: dict[str, Any]) -> None:
        entry: dict[str, Any] = {"PartNumber": number, "ETag": result["ETag"]}
        for name, value in result.items():
            if name.startswith("Checksum") and name != "ChecksumType" and value:
                entry[name] = value
        self._completed.append(entry)

    def _copy(self, part: _Part, start: int, length: int) -> None:
        pieces = max(1, math.ceil(length / MAX_COPY))
        step = math.ceil(length / pieces)  # equal pieces: none falls under 5 MiB
        end = start + length
        while start < end:
            stop = min(start + step, end)
            number = self._number()
            response = self._store.client.upload_part_copy(
                Bucket=self._store.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                CopySource={"Bucket": self._store.bucket, "Key": part.key},
                CopySourceRange=f"bytes={start}-{stop - 1}",
            )
            self._record(number, response["CopyPartResult"])
            start = stop

    def _upload_spool(self, pending: IO[bytes], size: int) -> None:
        number = self._number()
        pending.seek(0)
        response = self._store.client.upload_part(
            Bucket=self._store.bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=_Window(pending, size),
            ContentLength=size,
        )
        self._record(number, response)
        pending.seek(0)
        pending.truncate()


class _Window:
    """The first `size` bytes of a file, as a seekable stream for botocore."""

    def __init__(self, handle: IO[bytes], size: int) -> None:
        self._handle = handle
        self._size = size
        self._pos = 0

    def read(self, amount: int | None = -1) -> bytes:
        left = self._size - self._pos
        if amount is None or amount < 0 or amount > left:
            amount = left
        self._handle.seek(self._pos)
        data = self._handle.read(amount)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, min(self._size, base + offset))
        return self._pos

    def tell(self) -> int:
        return self._pos
