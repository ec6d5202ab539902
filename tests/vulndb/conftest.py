"""Fixtures of the vulndb tests: OSV records under fixtures/ (see fixtures/NOTICE)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cargohold.vulndb.matching import AdvisoryIndex
from cargohold.vulndb.osv import Advisory, parse_record

FIXTURES = Path(__file__).parent / "fixtures"
OSV = FIXTURES / "osv"
MALFORMED = FIXTURES / "malformed"


def load_advisories(folder: Path = OSV) -> list[Advisory]:
    advisories = []
    for file in sorted(folder.rglob("*.json")):
        document = json.loads(file.read_bytes())
        for record in document if isinstance(document, list) else [document]:
            advisories.append(parse_record(record))
    return advisories


@pytest.fixture(scope="session")
def advisories() -> list[Advisory]:
    return load_advisories()


@pytest.fixture(scope="session")
def index(advisories: list[Advisory]) -> AdvisoryIndex:
    return AdvisoryIndex(advisories)
