"""Errors of the upstream of a cached namespace, as the /v2 API reports them."""

from __future__ import annotations

from cargohold.errors import RegistryError


class UpstreamUnavailable(RegistryError):
    """The upstream could not be reached or failed (5xx, 429, timeout): 503 UNAVAILABLE."""


class UpstreamDenied(RegistryError):
    """The upstream refused the configured credentials (401/403 after auth): 502 DENIED."""


class UpstreamNotFound(Exception):
    """The upstream answered 404 (internal: turned into MANIFEST_UNKNOWN / BLOB_UNKNOWN)."""
