"""Manifest parsing and validation, one function per media type family."""

from cargohold.manifest.parse import Descriptor, ParsedManifest, parse_manifest

__all__ = ["Descriptor", "ParsedManifest", "parse_manifest"]
