"""ProxyService: what the core asks on a miss in a namespace that caches an upstream.

Manifests (sync, called from the core's get in a worker thread):
- digest pulls: local hit served; a miss is fetched, verified against the digest, stored.
  Never revalidated (a digest names its content).
- tag pulls, local-first: a local tag no proxy ever checked (pushed here) is served; a
  cached tag is served until its check is `tag_ttl_seconds` old, then revalidated with a
  HEAD upstream: unchanged -> served (check renewed), changed -> fetched and re-tagged.
- tag pulls, upstream-first: every pull asks the upstream first (HEAD).
- the upstream unreachable / 5xx: the local copy is served when `serve_stale_on_error`,
  else 503 UNAVAILABLE; the upstream says 404: the local copy is served when
  `serve_stale_on_404` (or when the tag was pushed here), else MANIFEST_UNKNOWN.

Blobs: a miss starts one fetch per (repository, digest) in this process (single-flight);
every concurrent request for it streams from the same fetch while it writes to a blob
store upload, hashing. The blob is committed (and visible) only once the digest verified;
a client that goes away does not stop the fetch. Across processes each one fetches on
its own (no cross-process lock); the commit is idempotent.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from cargohold.core.blobs import BlobContent
from cargohold.digest import Digest, is_digest_like
from cargohold.errors import BlobUnknown, DigestInvalid, ManifestTooLarge, ManifestUnknown
from cargohold.manifest import parse_manifest
from cargohold.proxy.errors import UpstreamDenied, UpstreamNotFound, UpstreamUnavailable
from cargohold.proxy.manage import ProxyRules
from cargohold.proxy.secrets import SecretBox
from cargohold.proxy.store import (
    LOCAL_FIRST,
    WHOLE_REGISTRY,
    ProxyRule,
    ProxyStore,
)
from cargohold.proxy.upstream import Upstream
from cargohold.storage.blobs import BlobStore
from cargohold.storage.meta import ChangeOrigin, ManifestRecord, MetadataStore, UploadRecord

log = logging.getLogger(__name__)

LocalLookup = Callable[[str], ManifestRecord | None]
CHUNK = 1024 * 1024
PROXY_ORIGIN = ChangeOrigin(None, "proxy")


class ProxyService:
    def __init__(
        self,
        store: ProxyStore,
        meta: MetadataStore,
        blobs: BlobStore,
        secrets: SecretBox,
        max_manifest_size: int,
        spool_dir: Path | None = None,
        rule_cache_seconds: float = 2.0,
    ) -> None:
        self.store = store
        self._meta = meta
        self._blobs = blobs
        self._secrets = secrets
        self._max_manifest_size = max_manifest_size
        self._spool_dir = spool_dir
        self._rule_cache_seconds = rule_cache_seconds
        self._rules: tuple[float, dict[str, ProxyRule]] | None = None
        self._upstreams: dict[str, tuple[datetime, Upstream]] = {}
        self._lock = threading.Lock()
        self._manifest_locks: dict[tuple[str, str], _LockEntry] = {}
        self._fetches: dict[tuple[str, str], _BlobFetch] = {}
        self.upstream_blob_fetches = 0  # upstream blob GETs this process started
        self.rules = ProxyRules(store, secrets)

    def close(self) -> None:
        for _, upstream in self._upstreams.values():
            upstream.close()

    # -- rules
    def _rule_map(self) -> dict[str, ProxyRule]:
        cached = self._rules
        if cached is None or time.monotonic() - cached[0] > self._rule_cache_seconds:
            cached = (time.monotonic(), {rule.namespace: rule for rule in self.store.rules()})
            self._rules = cached
        return cached[1]

    def invalidate(self) -> None:
        self._rules = None

    def rule_for(self, repository: str) -> ProxyRule | None:
        rules = self._rule_map()
        if not rules:
            return None
        namespace, slash, _ = repository.partition("/")
        if slash and namespace in rules:
            return rules[namespace]
        return rules.get(WHOLE_REGISTRY)

    def rule_for_mirror(self, host: str) -> ProxyRule | None:
        """The rule containerd's `?ns=<host>` names: by mirror_of or the upstream's host."""
        host = host.lower()
        for rule in self._rule_map().values():
            if rule.mirror_host().lower() == host:
                return rule
        return None

    def upstream(self, rule: ProxyRule) -> Upstream:
        with self._lock:
            cached = self._upstreams.get(rule.namespace)
            if cached is not None and cached[0] == rule.updated_at:
                return cached[1]
            try:
                password = (
                    self._secrets.decrypt(rule.password_encrypted)
                    if rule.password_encrypted
                    else None
                )
            except ValueError as exc:
                raise UpstreamDenied(f"proxy rule {rule.namespace}: {exc}") from None
            upstream = Upstream(rule.upstream_url, rule.username, password)
            self._upstreams[rule.namespace] = (rule.updated_at, upstream)
        if cached is not None:
            cached[1].close()
        return upstream

    # -- manifests
    def get_manifest(
        self, rule: ProxyRule, repository: str, reference: str, local: LocalLookup
    ) -> ManifestRecord:
        if is_digest_like(reference):
            digest = str(Digest.parse(reference))
            record = local(digest)
            if record is not None:
                return record
            with self._manifest_lock(repository, digest):
                record = local(digest)
                if record is not None:
                    return record
                try:
                    return self._fetch_manifest(rule, repository, digest, tag=None)
                except UpstreamNotFound:
                    raise ManifestUnknown(
                        f"manifest {digest} is not in repository {repository} nor upstream"
                    ) from None
        return self._get_tagged(rule, repository, reference, local)

    def _get_tagged(
        self, rule: ProxyRule, repository: str, tag: str, local: LocalLookup
    ) -> ManifestRecord:
        started = datetime.now(UTC)
        record = local(tag)
        check = self.store.tag_check(repository, tag)
        if record is not None and rule.mode == LOCAL_FIRST:
            if check is None:
                return record  # pushed here, not cached
            if (started - check.checked_at).total_seconds() < rule.tag_ttl_seconds:
                return record
        with self._manifest_lock(repository, tag):
            if record is not None:
                # Another request may have revalidated while this one waited.
                newer = self.store.tag_check(repository, tag)
                if newer is not None and newer.checked_at >= started:
                    return local(tag) or record
            try:
                if record is not None:
                    upstream_digest = self.upstream(rule).head_manifest(
                        rule.remote_name(repository), tag
                    )
                    if upstream_digest == record.digest:
                        self.store.record_tag_check(repository, tag, upstream_digest)
                        return record
                return self._fetch_manifest(rule, repository, tag, tag=tag)
            except UpstreamNotFound:
                if record is not None and (rule.serve_stale_on_404 or check is None):
                    log.info("upstream has no %s:%s; serving the cached copy", repository, tag)
                    return record
                raise ManifestUnknown(
                    f"manifest {tag} is not in repository {repository} upstream "
                    f"({rule.upstream_url})"
                ) from None
            except (UpstreamUnavailable, UpstreamDenied) as exc:
                if record is not None and rule.serve_stale_on_error:
                    log.warning(
                        "serving cached %s:%s, upstream failed: %s", repository, tag, exc.message
                    )
                    return record
                raise

    @contextmanager
    def _manifest_lock(self, repository: str, reference: str) -> Iterator[None]:
        """One upstream request at a time per (repository, reference) in this process;
        entries go when nobody holds or waits for them."""
        key = (repository, reference)
        with self._lock:
            entry = self._manifest_locks.setdefault(key, _LockEntry())
            entry.users += 1
        try:
            with entry.lock:
                yield
        finally:
            with self._lock:
                entry.users -= 1
                if entry.users == 0:
                    del self._manifest_locks[key]

    def _fetch_manifest(
        self, rule: ProxyRule, repository: str, reference: str, tag: str | None
    ) -> ManifestRecord:
        fetched = self.upstream(rule).get_manifest(rule.remote_name(repository), reference)
        body = fetched.body
        if len(body) > self._max_manifest_size:
            raise ManifestTooLarge(
                f"upstream manifest is {len(body)} bytes; the limit is {self._max_manifest_size}"
            )
        if tag is None:
            claimed = Digest.parse(reference)
        elif fetched.digest and is_digest_like(fetched.digest):
            claimed = Digest.parse(fetched.digest)
        else:
            claimed = Digest.of(body)
        digest = Digest.of(body, claimed.algorithm)
        if digest != claimed:
            raise DigestInvalid(
                f"upstream sent a manifest with digest {digest} for {reference} ({claimed})",
                detail={"expected": str(claimed), "actual": str(digest)},
            )
        parsed = parse_manifest(body, fetched.media_type)
        record = ManifestRecord(
            digest=str(digest),
            media_type=parsed.media_type,
            content=body,
            artifact_type=parsed.artifact_type,
            subject=parsed.subject.digest if parsed.subject else None,
            annotations=parsed.annotations,
        )
        wanted = {d.digest: d.size for d in parsed.blobs}
        present = self._meta.blob_sizes(repository, wanted)
        children = [d.digest for d in parsed.manifests]
        # Untagged first, then the blobs it waits for, then the tag: a pull that sees the
        # tag finds every reference recorded.
        self._meta.put_manifest(repository, record, list(present), children, [], PROXY_ORIGIN)
        pending = [(d, s) for d, s in wanted.items() if d not in present]
        self.store.add_pending(repository, record.digest, pending)
        if tag is not None:
            self._meta.put_manifest(
                repository, record, list(present), children, [tag], PROXY_ORIGIN
            )
            self.store.record_tag_check(repository, tag, record.digest)
        log.info(
            "cached %s@%s (%s) from %s", repository, record.digest, reference, rule.upstream_url
        )
        return record

    # -- blobs
    def get_blob(self, rule: ProxyRule, repository: str, digest: str) -> BlobContent:
        if self.store.link_pending_blob(repository, digest):
            size = self._meta.blob_size(repository, digest)
            if size is not None:
                return BlobContent(digest, size, self._blobs.local_path(digest), self._blobs)
        key = (repository, digest)
        with self._lock:
            fetch = self._fetches.get(key)
            if fetch is None:
                size = self._meta.blob_size(repository, digest)
                if size is not None:  # a fetch finished just now
                    return BlobContent(digest, size, self._blobs.local_path(digest), self._blobs)
                fetch = _BlobFetch(self, rule, repository, digest)
                self._fetches[key] = fetch
                fetch.start()
            reader = fetch.reader()
        try:
            size = fetch.wait_for_size()
        except BaseException:
            reader.close()
            raise
        return _FetchedBlob(digest, size, None, _NoRedirect(self._blobs), reader)

    def _fetch_done(self, fetch: _BlobFetch) -> None:
        with self._lock:
            self._fetches.pop((fetch.repository, fetch.digest), None)

    def spool_paths(self, repository: str, digest: str) -> tuple[Path, Path]:
        """The spool file of a blob being fetched and the lock file its fetcher holds;
        shared by the worker processes of one data directory."""
        directory = self._spool_dir or Path(tempfile.gettempdir()) / "cargohold-proxy-spool"
        directory.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(f"{repository}@{digest}".encode()).hexdigest()[:32]
        return directory / f"{name}.spool", directory / f"{name}.lock"


class _LockEntry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0


class _BlobFetch:
    """One upstream GET of a blob, written to an upload and to a spool file readers tail.

    Across the worker processes sharing the data directory, an exclusive lock on the
    blob's lock file elects the one process that fetches (the leader); the others follow:
    they tail its spool file and, once it released the lock, find the blob committed (the
    rest is read from the blob store) or, when its fetch failed, fetch themselves.
    """

    def __init__(self, service: ProxyService, rule: ProxyRule, repository: str, digest: str):
        self.service = service
        self.rule = rule
        self.repository = repository
        self.digest = digest
        self.size: int | None = None
        self.written = 0
        self.finished = False
        self.committed = False
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._spool_path, self._lock_path = service.spool_paths(repository, digest)
        self._read_fd: int | None = None
        self._readers = 0

    def start(self) -> None:
        threading.Thread(
            target=self._run, name=f"proxy-fetch {self.digest[:19]}", daemon=True
        ).start()

    # -- readers (HTTP responses) share one read descriptor of the spool file
    def reader(self) -> _SpoolReader:
        with self._cond:
            self._readers += 1
        return _SpoolReader(self)

    def release_reader(self) -> None:
        with self._cond:
            self._readers -= 1
            self._close_read_fd_if_unused()

    def _close_read_fd_if_unused(self) -> None:
        if self.finished and self._readers == 0 and self._read_fd is not None:
            os.close(self._read_fd)
            self._read_fd = None

    def pread(self, size: int, offset: int) -> bytes:
        with self._cond:
            fd = self._read_fd
            if fd is None:
                return b""
            return os.pread(fd, size, offset)

    def wait_for_size(self) -> int:
        with self._cond:
            while self.size is None and self.error is None and not self.finished:
                self._cond.wait()
            if self.error is not None and self.size is None:
                raise _client_error(self.error, self.digest, self.repository)
            if self.size is None:
                self.size = self.written
            return self.size

    def wait_past(self, position: int) -> int:
        """Bytes in the spool once more than `position` are there (or the fetch ended)."""
        with self._cond:
            while self.written <= position and not self.finished:
                self._cond.wait(timeout=60)
            if self.written <= position and self.error is not None:
                raise _client_error(self.error, self.digest, self.repository)
            return self.written

    def _progress(self, written: int) -> None:
        with self._cond:
            self.written = written
            self._cond.notify_all()

    # -- the fetch
    def _run(self) -> None:
        lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if not _try_lock(lock_fd):
                self._follow(lock_fd)  # returns holding the lock when the leader failed
            if not self.committed:
                self._lead()
        except BaseException as exc:
            if not isinstance(exc, UpstreamNotFound):
                log.warning(
                    "proxy fetch of %s for %s failed: %s", self.digest, self.repository, exc
                )
            with self._cond:
                self.error = exc
        finally:
            os.close(lock_fd)  # releases the lock
            with self._cond:
                self.finished = True
                self._close_read_fd_if_unused()
                self._cond.notify_all()
            self.service._fetch_done(self)

    def _follow(self, lock_fd: int) -> None:
        """Another process fetches: tail its spool until it lets go of the lock."""
        log.info("blob %s: following the fetch of another process", self.digest)
        declared = self.service.store.pending_size(self.repository, self.digest)
        with self._cond:
            self.size = declared
            self._cond.notify_all()
        while True:
            if self._read_fd is None:
                try:
                    fd = os.open(self._spool_path, os.O_RDONLY)
                except FileNotFoundError:
                    pass
                else:
                    with self._cond:
                        self._read_fd = fd
            if self._read_fd is not None:
                self._progress(os.fstat(self._read_fd).st_size)
            if _try_lock(lock_fd):
                break
            time.sleep(0.05)
        size = self.service._meta.blob_size(self.repository, self.digest)
        if size is not None:
            with self._cond:
                if self._read_fd is not None:
                    self.written = os.fstat(self._read_fd).st_size
                self.size = size
                self.committed = True
                self._cond.notify_all()
            return
        # The leader failed: this process fetches, from the start.
        with self._cond:
            if self._read_fd is not None:
                os.close(self._read_fd)
                self._read_fd = None
            self.written = 0
            self.size = None

    def _lead(self) -> None:
        service = self.service
        blobs = service._blobs
        size = service._meta.blob_size(self.repository, self.digest)
        if size is not None:  # committed by a process that held the lock just before
            with self._cond:
                self.size = size
                self.committed = True
                self._cond.notify_all()
            return
        service.upstream_blob_fetches += 1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._spool_path)  # left by a crashed fetch
        spool_fd = os.open(self._spool_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with self._cond:
            self._read_fd = os.open(self._spool_path, os.O_RDONLY)
            self.written = 0
        upload_id = f"proxy-{uuid.uuid4().hex}"
        uploaded = False
        try:
            expected = Digest.parse(self.digest)
            upstream = service.upstream(self.rule)
            with upstream.blob(self.rule.remote_name(self.repository), self.digest) as response:
                length = response.headers.get("content-length")
                declared = service.store.pending_size(self.repository, self.digest)
                with self._cond:
                    if length is not None and length.isdigit():
                        self.size = int(length)
                    else:  # chunked: the size the manifest declares, checked at the end
                        self.size = declared
                    self._cond.notify_all()
                service._meta.create_upload(
                    UploadRecord(upload_id, self.repository, expected.algorithm, datetime.now(UTC))
                )
                blobs.start_upload(upload_id)
                uploaded = True
                hasher = hashlib.new(expected.algorithm)
                written = 0
                with blobs.open_upload(upload_id, 0) as writer:
                    for chunk in response.iter_bytes(CHUNK):
                        writer.write(chunk)
                        hasher.update(chunk)
                        os.write(spool_fd, chunk)
                        written += len(chunk)
                        self._progress(written)
            actual = f"{expected.algorithm}:{hasher.hexdigest()}"
            if actual != str(expected):
                raise DigestInvalid(f"upstream sent blob {actual} for {expected}")
            if self.size is not None and self.size != written:
                raise DigestInvalid(f"upstream sent {written} of {self.size} bytes")
            blobs.flush_upload(upload_id)
            service.store.commit_fetched_blob(
                self.repository,
                self.digest,
                written,
                lambda: blobs.commit_upload(upload_id, self.digest),
                lambda: blobs.delete(self.digest),
            )
            uploaded = False
            service._meta.delete_upload(upload_id)
            with self._cond:
                self.committed = True
            log.info("cached blob %s in %s (%d bytes)", self.digest, self.repository, written)
        except BaseException:
            if uploaded:
                try:
                    blobs.cancel_upload(upload_id)
                    service._meta.delete_upload(upload_id)
                except Exception:
                    log.exception("could not drop the proxy upload %s", upload_id)
            raise
        finally:
            os.close(spool_fd)
            # Before the lock goes: a later fetcher never sees this spool as its own.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._spool_path)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class _SpoolReader:
    def __init__(self, fetch: _BlobFetch) -> None:
        self.fetch: _BlobFetch | None = fetch

    def close(self) -> None:
        if self.fetch is not None:
            self.fetch.release_reader()
            self.fetch = None

    def __del__(self) -> None:  # a HEAD request never streams
        self.close()

    def stream(self, offset: int, length: int | None) -> Iterator[bytes]:
        fetch = self.fetch
        assert fetch is not None
        position = offset
        try:
            size = fetch.wait_for_size()
            end = size if length is None else min(offset + length, size)
            while position < end:
                available = fetch.wait_past(position)
                if available > position:
                    data = fetch.pread(min(CHUNK, min(available, end) - position), position)
                    if data:
                        position += len(data)
                        yield data
                        continue
                if fetch.finished and fetch.committed:
                    # Fetched by another process (or its spool was gone): the rest is stored.
                    yield from fetch.service._blobs.read(fetch.digest, position, end - position)
                    return
                if fetch.finished:
                    break
        finally:
            self.close()


class _FetchedBlob(BlobContent):
    __slots__ = ("_reader",)

    def __init__(
        self, digest: str, size: int, path: Path | None, store: BlobStore, reader: _SpoolReader
    ) -> None:
        super().__init__(digest, size, path, store)
        object.__setattr__(self, "_reader", reader)

    def stream(self, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        return self._reader.stream(offset, length)


class _NoRedirect:
    """The blob store, minus redirects: a blob being fetched is not in storage yet."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store

    def redirect_url(self, digest: str, expires: int = 300) -> str | None:
        return None

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def _client_error(error: BaseException, digest: str, repository: str) -> BaseException:
    if isinstance(error, UpstreamNotFound):
        return BlobUnknown(f"blob {digest} is not in repository {repository} nor upstream")
    if isinstance(error, (UpstreamUnavailable, UpstreamDenied, DigestInvalid)):
        return error
    return UpstreamUnavailable(f"fetching blob {digest} from upstream failed: {error}")
