"""Pull-through cache: namespaces that cache an upstream registry (see docs/proxy-cache.md)."""

from cargohold.proxy.errors import UpstreamDenied, UpstreamUnavailable
from cargohold.proxy.service import ProxyService
from cargohold.proxy.store import ProxyRule, ProxyStore

__all__ = ["ProxyRule", "ProxyService", "ProxyStore", "UpstreamDenied", "UpstreamUnavailable"]
