"""cargohold: an OCI Distribution v1.1 container registry."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # Looked up on first use: importlib.metadata takes 40 ms to import, paid by every
    # command (`cargohold gc --help` too) when it was done here at import time.
    if name != "__version__":
        raise AttributeError(f"module 'cargohold' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("cargohold")
    except PackageNotFoundError:  # running from a source tree that was never installed
        value = "0.0.0+unknown"
    globals()["__version__"] = value
    return value
