"""Consistency check of the metadata and the blob store, with safe repairs.

What is checked (each problem is a Finding of one kind):

- every recorded blob: the store holds it, with the recorded size, and (unless content
  verification is off) its bytes hash to its digest;
- every stored blob file: the metadata records it (else an orphan, left alone while
  younger than the grace period: it may be a push being committed right now);
- every reference: manifests -> blobs (recorded, and linked in the manifest's
  repository), indexes -> child manifests, tags -> manifests, manifest bytes -> their
  digest; referrers whose subject is absent are information only (the OCI spec allows
  pushing a referrer before its subject).

Repairs (only when asked) never touch anything referenced and intact:

- orphan files older than the grace are deleted, under the digest lock a commit takes,
  re-checking that no blob row appeared (sql_gc.gc_delete_files);
- a blob whose bytes do not match its digest or size is moved to quarantine (never
  deleted), so an upload of the right bytes can restore it;
- the rows (and repository links) of a blob whose bytes are gone are removed when no
  manifest names it, so a push uploads it again; when a manifest names it, it is
  reported with what to do;
- a blob a manifest names but its repository does not link is linked again, when its
  bytes are intact.

Repairs run under the garbage collector's lock, so a collection cannot race them.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from cargohold.errors import Conflict, NameUnknown, RegistryError
from cargohold.storage.blobs import BlobStore
from cargohold.storage.meta import MetadataStore
from cargohold.storage.meta.sql_fsck import Inventory, manifest_contents, read_inventory

ERROR = "error"
WARNING = "warning"
INFO = "info"

# kind -> (severity, short description)
KINDS: dict[str, tuple[str, str]] = {
    "blob_missing": (ERROR, "blob recorded, but the store does not hold it"),
    "blob_size_mismatch": (ERROR, "stored blob has another size than recorded"),
    "blob_digest_mismatch": (ERROR, "stored blob's bytes hash to another digest"),
    "orphan_file": (WARNING, "stored blob no metadata records"),
    "orphan_file_young": (INFO, "stored blob no metadata records, younger than the grace"),
    "manifest_blob_unrecorded": (ERROR, "manifest names a blob the metadata does not record"),
    "manifest_blob_unlinked": (ERROR, "manifest names a blob its repository does not link"),
    "manifest_digest_mismatch": (ERROR, "manifest bytes do not match their digest or size"),
    "index_child_missing": (ERROR, "index lists a manifest its repository does not hold"),
    "tag_manifest_missing": (ERROR, "tag names a manifest that does not exist"),
    "referrer_subject_absent": (INFO, "referrer's subject is not in its repository"),
}

# phase, done, total: for progress bars
Progress = Callable[[str, int, int], None]

BUFFER = 4 << 20  # bytes read at a time when hashing a local file
WORKERS = 4  # blobs hashed at once (hashlib releases the GIL on large buffers)


@dataclass(slots=True)
class Finding:
    kind: str
    subject: str  # a digest, repository@digest or repository:tag
    detail: str
    repository: str | None = None
    repair: str | None = None  # what was done, or why it could not be

    @property
    def severity(self) -> str:
        return KINDS[self.kind][0]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, **asdict(self)}


@dataclass(slots=True)
class FsckReport:
    repair: bool
    verify_content: bool
    started_at: str
    seconds: float = 0.0
    checked: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    repaired: list[dict[str, str]] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        """Findings that need attention: not information, and not repaired."""
        repaired = {(item["kind"], item["subject"]) for item in self.repaired}
        return [
            finding
            for finding in self.findings
            if finding.severity != INFO and (finding.kind, finding.subject) not in repaired
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "repair": self.repair,
            "verify_content": self.verify_content,
            "started_at": self.started_at,
            "seconds": self.seconds,
            "checked": dict(self.checked),
            "findings": [finding.to_dict() for finding in self.findings],
            "repaired": list(self.repaired),
            "problems_left": len(self.problems),
        }


class FsckBusy(Conflict):
    """A garbage collection (or another repair) holds the lock."""


class UnknownRepository(NameUnknown):
    """--repository names a repository the metadata does not hold."""


@dataclass(frozen=True, slots=True)
class FsckOptions:
    repair: bool = False
    verify_content: bool = True
    grace: timedelta = timedelta(hours=24)
    repository: str | None = None


def _no_progress(phase: str, done: int, total: int) -> None:
    return None


# -- what the blob store offers beyond the BlobStore protocol, by backend
def _stored_at(blobs: BlobStore, digest: str) -> datetime | None:
    """When a stored blob was written, or None when the backend cannot tell."""
    path = blobs.local_path(digest)
    if path is not None:
        try:
            return datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except FileNotFoundError:
            return None
    key = _s3_key(blobs, digest)
    if key is None:
        return None
    try:
        head = blobs.client.head_object(Bucket=blobs.bucket, Key=key)  # type: ignore[attr-defined]
    except Exception:
        return None
    moment = head.get("LastModified")
    return moment if isinstance(moment, datetime) else None


def _s3_key(blobs: BlobStore, digest: str) -> str | None:
    key_of = getattr(blobs, "_blob_key", None)  # the S3 store's own object names
    if key_of is None or not hasattr(blobs, "client") or not hasattr(blobs, "bucket"):
        return None
    return str(key_of(digest))


def _quarantine(blobs: BlobStore, digest: str, stamp: str) -> str | None:
    """Move a stored blob aside (filesystem: <data dir>/quarantine/, S3: the quarantine/
    prefix), named <algorithm>-<encoded>-<stamp>; where it went, or None if unsupported."""
    name = f"{digest.replace(':', '-')}-{stamp}"
    path = blobs.local_path(digest)
    root = getattr(blobs, "root", None)
    if path is not None and isinstance(root, Path):
        folder = root / "quarantine"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        os.replace(path, target)  # same file system: data dir/blobs and data dir/quarantine
        return str(target)
    key = _s3_key(blobs, digest)
    if key is None:
        return None
    client, bucket = blobs.client, blobs.bucket  # type: ignore[attr-defined]
    target_key = f"{getattr(blobs, 'prefix', '')}quarantine/{name}"
    client.copy_object(Bucket=bucket, Key=target_key, CopySource={"Bucket": bucket, "Key": key})
    client.delete_object(Bucket=bucket, Key=key)
    return f"s3://{bucket}/{target_key}"


def _hash_blob(blobs: BlobStore, digest: str) -> tuple[str, int]:
    """The digest the stored bytes really have, and how many bytes there are."""
    algorithm = digest.partition(":")[0]
    hasher = hashlib.new(algorithm)
    size = 0
    path = blobs.local_path(digest)
    if path is not None:
        buffer = bytearray(BUFFER)
        view = memoryview(buffer)
        with path.open("rb", buffering=0) as handle:
            while count := handle.readinto(buffer):
                hasher.update(view[:count])
                size += count
    else:
        for chunk in blobs.read(digest):
            hasher.update(chunk)
            size += len(chunk)
    return f"{algorithm}:{hasher.hexdigest()}", size


class Fsck:
    def __init__(self, meta: MetadataStore, blobs: BlobStore, engine: Engine) -> None:
        self._meta = meta
        self._blobs = blobs
        self._engine = engine

    def run(self, options: FsckOptions, progress: Progress | None = None) -> FsckReport:
        progress = progress or _no_progress
        started = time.monotonic()
        now = datetime.now(UTC)
        report = FsckReport(options.repair, options.verify_content, now.isoformat())
        only = None
        if options.repository is not None:
            from cargohold.storage.meta.sql_fsck import repository_id

            only = repository_id(self._engine, options.repository)
            if only is None:
                raise UnknownRepository(f"repository {options.repository} is not known")

        progress("metadata", 0, 1)
        inventory = read_inventory(self._engine, only)  # before listing storage: see orphans
        progress("metadata", 1, 1)
        names = inventory.repositories
        report.checked = {
            "repositories": len(names),
            "blobs": len(inventory.blobs),
            "blob_bytes": sum(inventory.blobs.values()),
            "links": sum(len(repos) for repos in inventory.links.values()),
            "manifests": len(inventory.manifests),
            "tags": len(inventory.tags),
            "stored_files": 0,
        }

        broken = self._check_blobs(inventory, options, report, progress)
        if only is None:
            self._check_orphans(inventory, now - options.grace, report, progress)
        self._check_manifests(inventory, report, progress)
        self._check_tags(inventory, report)

        if options.repair:
            with self._meta.gc_exclusive() as alone:
                if not alone:
                    raise FsckBusy(
                        "a garbage collection is running; run fsck --repair when it ends"
                    )
                _Repairer(self._meta, self._blobs, inventory, report, now).run(broken)
        report.seconds = round(time.monotonic() - started, 3)
        return report

    # -- blobs: recorded -> stored, intact
    def _check_blobs(
        self, inventory: Inventory, options: FsckOptions, report: FsckReport, progress: Progress
    ) -> dict[str, str]:
        """Report missing and damaged blobs; digest -> kind for each of them."""
        broken: dict[str, str] = {}
        digests = sorted(inventory.blobs)
        total = len(digests)

        def check(digest: str) -> tuple[str, str | None, str]:
            recorded = inventory.blobs[digest]
            stored = self._blobs.stat(digest)
            if stored is None:
                return digest, "blob_missing", ""
            if stored != recorded:
                return digest, "blob_size_mismatch", f"recorded {recorded} bytes, stored {stored}"
            if options.verify_content:
                try:
                    actual, size = _hash_blob(self._blobs, digest)
                except FileNotFoundError:
                    return digest, "blob_missing", ""
                if actual != digest:
                    return digest, "blob_digest_mismatch", f"content hashes to {actual}"
                if size != recorded:
                    return digest, "blob_size_mismatch", f"recorded {recorded} bytes, read {size}"
            return digest, None, ""

        progress("blobs", 0, total)
        verified = 0
        with ThreadPoolExecutor(WORKERS) as pool:
            for done, (digest, kind, detail) in enumerate(pool.map(check, digests), 1):
                if kind is None:
                    verified += inventory.blobs[digest] if options.verify_content else 0
                else:
                    broken[digest] = kind
                    users = self._users(inventory, digest)
                    text = detail or KINDS[kind][1]
                    if users:
                        text += f"; used by {', '.join(users)}"
                    report.findings.append(Finding(kind, digest, text))
                if done % 50 == 0 or done == total:
                    progress("blobs", done, total)
        report.checked["bytes_hashed"] = verified
        return broken

    @staticmethod
    def _users(inventory: Inventory, digest: str, limit: int = 3) -> list[str]:
        names = inventory.repositories
        users = [
            f"{names.get(row.repository_id, row.repository_id)}@{row.digest}"
            for manifest_id, refs in inventory.blob_refs.items()
            if digest in refs and (row := inventory.manifests.get(manifest_id)) is not None
        ]
        users.sort()
        linked = sorted(
            f"{names[repo]} (link)" for repo in inventory.links.get(digest, ()) if repo in names
        )
        users += linked
        if len(users) > limit:
            return [*users[:limit], f"{len(users) - limit} more"]
        return users

    # -- stored files the metadata does not record
    def _check_orphans(
        self, inventory: Inventory, older_than: datetime, report: FsckReport, progress: Progress
    ) -> None:
        progress("storage", 0, 1)
        stored = 0
        for digest in self._blobs.digests():
            stored += 1
            if digest in inventory.blobs:
                continue
            written = _stored_at(self._blobs, digest)
            if written is None or written >= older_than:
                when = "unknown age" if written is None else f"written {written.isoformat()}"
                report.findings.append(
                    Finding(
                        "orphan_file_young",
                        digest,
                        f"{when}: may be a push being committed; left alone",
                    )
                )
            else:
                report.findings.append(
                    Finding("orphan_file", digest, f"written {written.isoformat()}")
                )
        report.checked["stored_files"] = stored
        progress("storage", 1, 1)

    # -- manifests: bytes, blobs, children, subjects
    def _check_manifests(
        self, inventory: Inventory, report: FsckReport, progress: Progress
    ) -> None:
        names = inventory.repositories
        total = len(inventory.manifests)
        progress("manifests", 0, total)
        for done, (manifest_id, content) in enumerate(
            manifest_contents(self._engine, set(inventory.manifests)), 1
        ):
            row = inventory.manifests[manifest_id]
            repository = names.get(row.repository_id, str(row.repository_id))
            where = f"{repository}@{row.digest}"
            algorithm = row.digest.partition(":")[0]
            actual = f"{algorithm}:{hashlib.new(algorithm, content).hexdigest()}"
            if actual != row.digest or len(content) != row.size:
                report.findings.append(
                    Finding(
                        "manifest_digest_mismatch",
                        where,
                        f"bytes hash to {actual}, {len(content)} bytes (recorded {row.size})",
                        repository,
                    )
                )
            for digest in sorted(inventory.blob_refs.get(manifest_id, ())):
                if digest not in inventory.blobs:
                    report.findings.append(
                        Finding(
                            "manifest_blob_unrecorded", where, f"names blob {digest}", repository
                        )
                    )
                elif row.repository_id not in inventory.links.get(digest, ()):
                    report.findings.append(
                        Finding(
                            "manifest_blob_unlinked",
                            f"{where} -> {digest}",
                            f"{repository} does not link blob {digest}",
                            repository,
                        )
                    )
            for child in sorted(inventory.children.get(manifest_id, ())):
                if (row.repository_id, child) not in inventory.by_digest:
                    report.findings.append(
                        Finding("index_child_missing", where, f"lists {child}", repository)
                    )
            if row.subject and (row.repository_id, row.subject) not in inventory.by_digest:
                report.findings.append(
                    Finding(
                        "referrer_subject_absent",
                        where,
                        f"subject {row.subject} (allowed: pushed before its subject)",
                        repository,
                    )
                )
            if done % 100 == 0 or done == total:
                progress("manifests", done, total)

    @staticmethod
    def _check_tags(inventory: Inventory, report: FsckReport) -> None:
        names = inventory.repositories
        for repository_id, tag, manifest_id in sorted(inventory.tags):
            if manifest_id not in inventory.manifests:
                repository = names.get(repository_id, str(repository_id))
                report.findings.append(
                    Finding(
                        "tag_manifest_missing",
                        f"{repository}:{tag}",
                        f"names manifest id {manifest_id}, which does not exist",
                        repository,
                        "cannot repair: push the image to this tag again",
                    )
                )


class _Repairer:
    """The safe repairs, each written to the report (repaired, or why not)."""

    def __init__(
        self,
        meta: MetadataStore,
        blobs: BlobStore,
        inventory: Inventory,
        report: FsckReport,
        now: datetime,
    ) -> None:
        self._meta = meta
        self._blobs = blobs
        self._inventory = inventory
        self._report = report
        self._now = now
        self._stamp = now.strftime("%Y%m%dT%H%M%SZ")

    def _done(self, finding: Finding, action: str) -> None:
        finding.repair = action
        self._report.repaired.append(
            {"kind": finding.kind, "subject": finding.subject, "action": action}
        )

    def run(self, broken: dict[str, str]) -> None:
        findings = self._report.findings
        by_blob = {f.subject: f for f in findings if f.kind in broken.values()}
        missing: set[str] = set()
        for digest, kind in sorted(broken.items()):
            finding = by_blob[digest]
            if kind == "blob_missing":
                missing.add(digest)
                continue
            where = _quarantine(self._blobs, digest, self._stamp)
            if where is None:
                finding.repair = (
                    "cannot repair: this blob store cannot quarantine; delete the blob's "
                    "bytes by hand, then upload the blob again"
                )
                continue
            missing.add(digest)
            self._done(finding, f"moved to quarantine at {where}; the blob is now missing")
        named = self._named()
        for digest in sorted(missing):
            self._forget_or_explain(digest, by_blob[digest], named)
        for finding in findings:
            if finding.kind == "manifest_blob_unlinked":
                self._relink(finding, missing)
        orphans = {f.subject: f for f in findings if f.kind == "orphan_file"}
        if orphans:
            deleted = self._meta.gc_delete_files(sorted(orphans), self._blobs.delete_many)
            for digest in deleted:
                self._done(orphans[digest], "deleted the file")
            for digest in set(orphans) - set(deleted):
                orphans[digest].repair = "left alone: the metadata records it now"

    def _named(self) -> dict[str, list[str]]:
        inventory = self._inventory
        named: dict[str, list[str]] = {}
        for manifest_id, refs in inventory.blob_refs.items():
            row = inventory.manifests.get(manifest_id)
            if row is None:
                continue
            repository = inventory.repositories.get(row.repository_id, str(row.repository_id))
            for digest in refs:
                named.setdefault(digest, []).append(f"{repository}@{row.digest}")
        return named

    def _forget_or_explain(
        self, digest: str, finding: Finding, named: dict[str, list[str]]
    ) -> None:
        users = sorted(named.get(digest, ()))
        if users:
            shown = ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
            note = (
                f"cannot repair: referenced by {shown}; upload the blob again (a monolithic "
                f"POST /v2/<repository>/blobs/uploads/?digest={digest} restores it), or "
                "delete those manifests and push the image again"
            )
            finding.repair = note if finding.repair is None else f"{finding.repair}; {note}"
            return
        if self._blobs.stat(digest) is not None:
            finding.repair = "left alone: the blob was uploaded again meanwhile"
            return
        names = self._inventory.repositories
        # Links made after fsck began are kept: they belong to a push running now.
        unlinked = []
        for repository_id in sorted(self._inventory.links.get(digest, ())):
            repository = names[repository_id]
            if self._meta.gc_unlink(repository, [digest], self._now):
                unlinked.append(repository)
        gone = self._meta.gc_delete_blobs([digest], self._now + timedelta(seconds=1))
        if not gone:
            finding.repair = (
                "cannot repair: something came to reference it meanwhile; run fsck again"
            )
            return
        action = "forgot the blob's metadata row"
        if unlinked:
            action += f" and its links in {', '.join(unlinked)}"
        action += "; a push uploads it again"
        if finding.repair:  # quarantined first
            action = f"{finding.repair}; {action}"
            self._report.repaired = [
                item for item in self._report.repaired if item["subject"] != finding.subject
            ]
        self._done(finding, action)

    def _relink(self, finding: Finding, missing: set[str]) -> None:
        digest = finding.subject.rpartition(" -> ")[2]
        repository = finding.repository or ""
        if digest in missing:
            finding.repair = f"cannot repair: blob {digest} is damaged or missing (see above)"
            return
        try:
            linked = self._meta.link_existing_blob(repository, digest)
        except RegistryError as exc:
            finding.repair = f"cannot repair: {exc.message}"
            return
        if linked:
            self._done(finding, f"linked {digest} in {repository} again")
        else:
            finding.repair = "cannot repair: the blob's row is gone; push the image again"
