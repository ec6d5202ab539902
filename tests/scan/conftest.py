"""Stores and a registry core over them in a fresh data dir, for the scanning tests that
push images in process (a live server, where needed, is started on the same data dir)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cargohold.config import Settings
from cargohold.core.registry import Registry
from cargohold.setup import prepare_storage
from cargohold.stores import Stores, open_stores


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def stores(data_dir: Path) -> Iterator[Stores]:
    settings = Settings(data_dir=data_dir)
    prepare_storage(settings)
    opened = open_stores(settings)
    yield opened
    opened.close()


@pytest.fixture
def registry(stores: Stores) -> Registry:
    """Overrides the session's live-server `registry` in this folder: the core in process."""
    return Registry(stores.blobs, stores.meta, 4 << 20)
