"""cargohold: an OCI Distribution v1.1 container registry."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cargohold")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
