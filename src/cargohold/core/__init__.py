"""The registry core: everything a registry does, with no knowledge of HTTP."""

from cargohold.core.registry import Registry

__all__ = ["Registry"]
