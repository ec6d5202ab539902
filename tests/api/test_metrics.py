"""/metrics: Prometheus text with requests by route and status, summed over workers."""

from __future__ import annotations

import hashlib

import httpx
from prometheus_client.parser import text_string_to_metric_families


def scrape(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_requests_and_bytes_are_counted(client: httpx.Client) -> None:
    requests_key = (
        "cargohold_http_requests_total",
        (("method", "GET"), ("route", "referrers"), ("status", "200")),
    )
    before = scrape(client)
    subject = "sha256:" + hashlib.sha256(b"metrics-subject").hexdigest()
    for _ in range(7):  # new connections, so several workers answer
        assert httpx.get(f"{client.base_url}/v2/metrics/app/referrers/{subject}").status_code == 200
    data = b"x" * 1000
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    pushed = client.post("/v2/metrics/app/blobs/uploads/", params={"digest": digest}, content=data)
    assert pushed.status_code == 201
    after = scrape(client)
    assert after[requests_key] - before.get(requests_key, 0) == 7
    received = ("cargohold_http_received_bytes_total", (("route", "blob_upload"),))
    assert after[received] - before.get(received, 0) >= len(data)
    latency = (
        "cargohold_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "referrers")),
    )
    assert after[latency] - before.get(latency, 0) == 7
    assert ("cargohold_uploads_in_progress", ()) in after
