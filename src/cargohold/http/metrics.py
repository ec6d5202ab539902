"""Prometheus metrics at /metrics: requests by route and status, latency, bytes in and out.

With several worker processes the values live in files under PROMETHEUS_MULTIPROC_DIR
(set by `serve` before the workers start), and a scrape of any worker sums them all.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response

from cargohold.http.v2paths import v2_route
from cargohold.process_env import MULTIPROC_ENV

# Route labels are a fixed set, never raw paths: repository names must not explode them.
_V2_LABELS = {
    "uploads": "blob_upload",
    "blobs": "blob",
    "manifests": "manifest",
    "tags": "tags",
    "referrers": "referrers",
}
_FIXED = {"/v2": "v2_base", "/v2/": "v2_base", "/v2/_catalog": "catalog", "/token": "token"}
_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


def route_label(path: str) -> str:
    fixed = _FIXED.get(path)
    if fixed is not None:
        return fixed
    routed = v2_route(path)
    if routed is not None:
        return _V2_LABELS[routed[1]]
    if path.startswith("/api/"):
        return "admin_api"
    return "probe" if path in _PROBES else "other"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["method", "route", "status"]
        self.requests = Counter(
            "cargohold_http_requests", "HTTP requests", labels, registry=self.registry
        )
        self.latency = Histogram(
            "cargohold_http_request_duration_seconds",
            "Time to answer a request, to the end of the body",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60),
            registry=self.registry,
        )
        self.bytes_out = Counter(
            "cargohold_http_sent_bytes", "Response body bytes", ["route"], registry=self.registry
        )
        self.bytes_in = Counter(
            "cargohold_http_received_bytes",
            "Request body bytes",
            ["route"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "cargohold_http_requests_in_flight",
            "Requests being answered",
            ["route"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        # labels() validates and locks on every call; a request's few label sets repeat.
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any, Any]] = {}

    def _bound(self, method: str, route: str, status: int) -> tuple[Any, Any, Any, Any]:
        key = (method, route, status)
        bound = self._children.get(key)
        if bound is None:
            bound = (
                self.requests.labels(method, route, str(status or 500)),
                self.latency.labels(method, route),
                self.bytes_out.labels(route),
                self.bytes_in.labels(route),
            )
            if len(self._children) < 4096:  # label sets are few; never grow without bound
                self._children[key] = bound
        return bound

    def observe(
        self, method: str, route: str, status: int, seconds: float, sent: int, received: int
    ) -> None:
        """Account for one finished request."""
        requests, latency, bytes_out, bytes_in = self._bound(method, route, status)
        requests.inc()
        latency.observe(seconds)
        if sent:
            bytes_out.inc(sent)
        if received:
            bytes_in.inc(received)

    def render(self, extra: dict[str, float]) -> bytes:
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        else:
            registry = self.registry
        lines = [generate_latest(registry)]
        for name, value in extra.items():
            lines.append(f"# TYPE {name} gauge\n{name} {value}\n".encode())
        return b"".join(lines)


def metrics_endpoint(
    metrics: Metrics, gauges: Callable[[], dict[str, float]]
) -> Callable[[Request], Response]:
    def endpoint(request: Request) -> Response:  # a plain def: Starlette runs it in a thread
        return Response(metrics.render(gauges()), media_type=CONTENT_TYPE_LATEST)

    return endpoint
