"""Stores and a registry core in a fresh data dir (as for the scanning tests)."""

from tests.scan.conftest import data_dir, registry, stores

__all__ = ["data_dir", "registry", "stores"]
