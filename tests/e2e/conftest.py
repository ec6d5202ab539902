"""Fixtures for the end-to-end tests with real clients."""

from __future__ import annotations

import pytest

from .skopeo import Skopeo, find_skopeo


@pytest.fixture(scope="session")
def skopeo(tmp_path_factory: pytest.TempPathFactory) -> Skopeo:
    """The real skopeo client. Missing skopeo is a failure, not a skip: CI installs it."""
    return Skopeo(find_skopeo(), tmp_path_factory.mktemp("skopeo-tmp"))
