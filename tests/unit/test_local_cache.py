"""The embedded setup's in-process lookup cache: answers from memory, invalidated in every
process on the host by a write in any of them, and usable on the event loop (cache-only
lookups raise NeedsIO instead of blocking on a miss)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cargohold.cache_only import NeedsIO, cache_only
from cargohold.storage.meta import ManifestRecord, SqlMetadataStore, schema
from cargohold.storage.meta.cached import LocalCachedMetadataStore
from cargohold.storage.meta.sqlbase import create_sql_engine

WRITER = """
import sys
from cargohold.storage.meta import ManifestRecord, SqlMetadataStore
from cargohold.storage.meta.cached import LocalCachedMetadataStore
from cargohold.storage.meta.sqlbase import create_sql_engine
db, generations, digest = sys.argv[1:4]
store = LocalCachedMetadataStore(
    SqlMetadataStore(create_sql_engine(db)), __import__("pathlib").Path(generations), 100
)
store.put_manifest("r", ManifestRecord(digest=digest, media_type="application/x",
                   content=b"from another process"), [], [], ["prod"])
"""


def record(text: str) -> ManifestRecord:
    return ManifestRecord(
        digest="sha256:" + hashlib.sha256(text.encode()).hexdigest(),
        media_type="application/x",
        content=text.encode(),
    )


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    engine = create_sql_engine(url)
    schema.upgrade(engine)
    yield url
    engine.dispose()


def cached(url: str, tmp_path: Path) -> LocalCachedMetadataStore:
    return LocalCachedMetadataStore(
        SqlMetadataStore(create_sql_engine(url)), tmp_path / "generations", 100
    )


def test_answers_come_from_memory_until_a_write(url: str, tmp_path: Path) -> None:
    store = cached(url, tmp_path)
    behind = SqlMetadataStore(create_sql_engine(url))
    one, two = record("one"), record("two")
    store.put_manifest("r", one, [], [], ["prod"])
    assert store.get_tagged_manifest("r", "prod") == one
    behind.put_manifest("r", two, [], [], ["prod"])  # unseen: proves the answer is cached
    assert store.get_tagged_manifest("r", "prod") == one
    store.delete_tag("r", "unrelated")
    assert store.get_tagged_manifest("r", "prod") == two


def test_a_write_in_another_process_invalidates_at_once(url: str, tmp_path: Path) -> None:
    store = cached(url, tmp_path)
    one = record("one")
    store.put_manifest("r", one, [], [], ["prod"])
    assert store.get_tagged_manifest("r", "prod") == one
    other = record("from another process")
    subprocess.run(
        [sys.executable, "-c", WRITER, url, str(tmp_path / "generations"), other.digest],
        check=True, timeout=120,
    )
    assert store.get_tagged_manifest("r", "prod") == other


def test_cache_only_lookups_hit_or_raise_needs_io(url: str, tmp_path: Path) -> None:
    store = cached(url, tmp_path)
    one = record("one")
    store.put_manifest("r", one, [], [], ["prod"])
    with cache_only(), pytest.raises(NeedsIO):
        store.get_tagged_manifest("r", "prod")  # not cached yet: would read the database
    assert store.get_tagged_manifest("r", "prod") == one
    with cache_only():
        assert store.get_tagged_manifest("r", "prod") == one
