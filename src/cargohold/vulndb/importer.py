"""Import OSV records from a folder tree of `*.json` files or a `.zip` of them.

Each file holds one record (the osv.dev export layout) or a JSON list of records. A record
that cannot be used is skipped and counted by reason, with a few file names as examples; the
import itself fails only when the source cannot be read at all. Records are saved in batches,
one transaction each.
"""

from __future__ import annotations

import json
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cargohold.storage.meta.sqlbase import now
from cargohold.vulndb.osv import Advisory, Notes, RecordError, parse_json, parse_record
from cargohold.vulndb.store import AdvisoryStore

MAX_FILE_BYTES = 32 * 1024 * 1024  # no OSV record is near this; a bigger file is skipped
BATCH = 1000
EXAMPLES = 5

Progress = Callable[[int, int], None]


class SourceError(Exception):
    """The path is neither a folder nor a zip archive that can be read."""


@dataclass(slots=True)
class ImportReport:
    source: str
    imported_at: datetime
    files: int = 0
    records: int = 0  # distinct records saved (added or updated)
    added: int = 0
    updated: int = 0
    kept_newer: int = 0  # the stored copy had a newer `modified`
    withdrawn: int = 0  # saved records that are withdrawn
    by_ecosystem: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_examples: dict[str, list[str]] = field(default_factory=dict)
    ignored: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def skip(self, reason: str, name: str) -> None:
        self.skipped[reason] += 1
        examples = self.skipped_examples.setdefault(reason, [])
        if len(examples) < EXAMPLES:
            examples.append(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "imported_at": self.imported_at.isoformat(),
            "files": self.files,
            "records": self.records,
            "added": self.added,
            "updated": self.updated,
            "kept_newer": self.kept_newer,
            "withdrawn": self.withdrawn,
            "by_ecosystem": dict(sorted(self.by_ecosystem.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "skipped_examples": dict(sorted(self.skipped_examples.items())),
            "ignored": dict(sorted(self.ignored.items())),
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True, slots=True)
class Source:
    """The record files under a path: `names` in import order, read by `items()`."""

    path: Path
    kind: str  # folder | zip | file
    names: tuple[str, ...]

    @property
    def total(self) -> int:
        return len(self.names)

    def items(self) -> Iterator[tuple[str, bytes | None]]:
        """(name, content) per file; content None when the file is too large, b"" when it
        cannot be read (then counted as invalid JSON)."""
        if self.kind == "zip":
            yield from self._zip_items()
            return
        for name in self.names:
            file = self.path / name if self.kind == "folder" else self.path
            try:
                if file.stat().st_size > MAX_FILE_BYTES:
                    yield name, None
                    continue
                yield name, file.read_bytes()
            except OSError:
                yield name, b""

    def _zip_items(self) -> Iterator[tuple[str, bytes | None]]:
        try:
            archive = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise SourceError(f"cannot read {self.path} as a zip archive: {exc}") from exc
        with archive:
            for name in self.names:
                info = archive.getinfo(name)
                if info.file_size > MAX_FILE_BYTES:
                    yield name, None
                    continue
                try:
                    yield name, archive.read(info)
                except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
                    yield name, b""


def _is_record_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.lower().endswith(".json") and not base.startswith(".")


def open_source(path: Path) -> Source:
    """The record files of a folder tree, a zip archive or one .json file.
    Raises SourceError when `path` is none of these or cannot be read."""
    if path.is_dir():
        try:
            names = sorted(
                str(p.relative_to(path))
                for p in path.rglob("*")
                if _is_record_name(p.name) and p.is_file()
            )
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc}") from exc
        return Source(path, "folder", tuple(names))
    if path.is_file() and zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                infos = archive.infolist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise SourceError(f"cannot read {path} as a zip archive: {exc}") from exc
        names = sorted(i.filename for i in infos if not i.is_dir() and _is_record_name(i.filename))
        return Source(path, "zip", tuple(names))
    if path.is_file() and path.suffix.lower() == ".json":
        return Source(path, "file", (path.name,))
    if not path.exists():
        raise SourceError(f"{path} does not exist")
    raise SourceError(f"{path} is neither a folder, a .zip archive nor a .json file")


def import_path(
    store: AdvisoryStore,
    path: Path | Source,
    progress: Progress | None = None,
    batch_size: int = BATCH,
) -> ImportReport:
    """Import every OSV record under `path` (folder, zip, or one .json file; or a Source
    from open_source) into `store`, and record the import with its counts.
    Raises SourceError when `path` cannot be read."""
    started = time.monotonic()
    source = path if isinstance(path, Source) else open_source(path)
    path = source.path
    total = source.total
    report = ImportReport(source=path.name or str(path), imported_at=now())
    notes = Notes()
    batch: list[tuple[Advisory, str]] = []
    saved: dict[str, Advisory] = {}

    def flush() -> None:
        result = store.save(batch, report.imported_at)
        report.added += result.added
        report.updated += result.updated
        report.kept_newer += result.kept_newer
        by_id = {advisory.id: advisory for advisory, _ in batch}
        for advisory_id in result.saved_ids:
            saved[advisory_id] = by_id[advisory_id]
        batch.clear()

    for done, (name, content) in enumerate(source.items(), start=1):
        report.files += 1
        if content is None:
            report.skip("file too large", name)
        else:
            try:
                document = parse_json(content)
            except RecordError as exc:
                report.skip(exc.reason, name)
                document = None
            records = document if isinstance(document, list) else [document]
            for record in records if document is not None else []:
                try:
                    advisory = parse_record(record, notes)
                except RecordError as exc:
                    report.skip(exc.reason, name)
                    continue
                raw = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
                batch.append((advisory, raw))
            if len(batch) >= batch_size:
                flush()
        if progress is not None:
            progress(done, total)
    if batch:
        flush()
    # Counted over what this import saved, once per id (a later file may replace an earlier).
    for advisory in saved.values():
        if advisory.is_withdrawn:
            report.withdrawn += 1
            continue
        for ecosystem in {entry.ecosystem for entry in advisory.affected if entry.matchable}:
            report.by_ecosystem[ecosystem] += 1
    report.records = len(saved)
    report.ignored = notes.ignored
    report.seconds = time.monotonic() - started
    store.record_import(report.source, report.to_dict(), report.imported_at)
    return report
