"""Storage usage over time: the serving process samples every repository once a day,
/v1/usage/history returns the series, and the usage page draws them."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect
from tests.conftest import LiveRegistry
from tests.scan.test_scan_on_push import wait_for

from cargohold.config import Settings
from cargohold.gc_schedule import sample_usage
from cargohold.storage.meta.base import UsageRecord
from cargohold.storage.meta.schema import upgrade
from cargohold.storage.meta.sql_usage_samples import UsageSampleStore, today
from cargohold.storage.meta.sqlbase import create_sql_engine
from cargohold.stores import open_stores

from .conftest import ADMIN, READER, REPO, UiRegistry
from .test_browser import shot, sign_in

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _samples(data_dir: Path) -> UsageSampleStore:
    return UsageSampleStore(create_sql_engine(f"sqlite:///{data_dir / 'meta.db'}"))


def _history(url: str, auth: tuple[str, str], **params: object) -> httpx.Response:
    return httpx.get(f"{url}/api/v1/usage/history", params=params, auth=auth)


def test_the_sampler_records_each_repository_once_a_day(registry: UiRegistry):
    stores = open_stores(Settings(data_dir=registry.data_dir))
    past = today() - timedelta(days=200)  # one the sampler never takes, off the charts (90 days)
    try:
        sample_usage(stores)  # 0 if the server's own sampler was first today
        assert sample_usage(stores) == 0  # once a day
        # Scans of the fixture's images may still be adding SBOMs: the sample is what
        # the repository held at some moment between these two readings.
        before = stores.meta.repository_usage(repository=REPO)[0]
        assert sample_usage(stores, past) >= 1
        after = stores.meta.repository_usage(repository=REPO)[0]
        assert sample_usage(stores, past) == 0
    finally:
        stores.close()
    history = _history(registry.url, ADMIN, days=400)
    assert history.status_code == 200, history.text
    body = history.json()
    assert body["until"] == today().isoformat()
    series = {line["repository"]: line["samples"] for line in body["repositories"]}
    assert series[REPO][-1]["day"] == today().isoformat()
    assert series[REPO][-1]["stored_bytes"] > 0
    sampled = {point["day"]: point["stored_bytes"] for point in series[REPO]}
    assert before.stored_bytes <= sampled[past.isoformat()] <= after.stored_bytes


def test_a_later_reading_wins_over_an_earlier_one_written_last(tmp_path: Path):
    """Two replicas sample the same day at once: the one that read the usage last keeps
    its numbers, even when the other one's write lands after it."""
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    upgrade(engine)
    samples = UsageSampleStore(engine)
    try:
        day = today()

        def stored() -> list[int]:
            return [sample.stored_bytes for sample in samples.series(day, repository=REPO)]

        early = datetime.now(UTC) - timedelta(seconds=5)
        samples.record([UsageRecord(REPO, stored_bytes=2_000)], day)
        samples.record([UsageRecord(REPO, stored_bytes=1_000)], day, read_at=early)
        assert stored() == [2_000]
        samples.record([UsageRecord(REPO, stored_bytes=3_000)], day)
        assert stored() == [3_000]
    finally:
        samples.close()


def test_who_may_read_the_history(registry: UiRegistry):
    assert _history(registry.url, READER).status_code == 403  # the registry's: admins
    mine = _history(registry.url, READER, namespace="acme")
    assert mine.status_code == 200, mine.text
    names = [line["repository"] for line in mine.json()["repositories"]]
    assert REPO in names and all(name.startswith("acme/") for name in names)
    # A private namespace the reader has no part in is missing, as one that does not exist.
    assert _history(registry.url, READER, namespace=ADMIN[0]).status_code == 404
    assert _history(registry.url, READER, namespace="nobody-here").status_code == 404
    assert _history(registry.url, READER, repository=REPO).status_code == 200
    assert _history(registry.url, READER, repository=f"{ADMIN[0]}/app").status_code == 403
    assert _history(registry.url, ADMIN, days=0).status_code == 400
    assert _history(registry.url, ADMIN, repository="not a name").status_code == 400


def _push(url: str, repository: str) -> None:
    config, layer = b"{}", b"usage sample layer" * 1000
    for data in (config, layer):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        posted = httpx.post(
            f"{url}/v2/{repository}/blobs/uploads/",
            params={"digest": digest},
            content=data,
            auth=ADMIN,
        )
        assert posted.status_code == 201, posted.text
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": "sha256:" + hashlib.sha256(layer).hexdigest(),
                "size": len(layer),
            }
        ],
    }
    put = httpx.put(
        f"{url}/v2/{repository}/manifests/v1",
        content=json.dumps(manifest).encode(),
        headers={"Content-Type": OCI_MANIFEST},
        auth=ADMIN,
    )
    assert put.status_code == 201, put.text


def test_a_starting_server_samples_usage(tmp_path: Path):
    """The sampler is part of the serving process: a server started on a registry with
    repositories records today's samples without being asked."""
    data_dir = tmp_path / "data"
    env = {"CARGOHOLD_ADMIN_USER": ADMIN[0], "CARGOHOLD_ADMIN_PASSWORD": ADMIN[1]}
    first = LiveRegistry(data_dir, extra_env=env)
    try:
        _push(first.url, f"{ADMIN[0]}/app")
    finally:
        first.stop()
    second = LiveRegistry(data_dir, extra_env=env)
    try:

        def sampled() -> bool:
            lines = _history(second.url, ADMIN, days=1).json()["repositories"]
            return [line["repository"] for line in lines] == [f"{ADMIN[0]}/app"]

        wait_for(sampled, 30)
    finally:
        second.stop()


def test_the_usage_page_charts_storage_over_time(browser: Browser, registry: UiRegistry):
    samples = _samples(registry.data_dir)
    try:
        for back in range(10, 0, -1):
            day = today() - timedelta(days=back)
            samples.record(
                [
                    UsageRecord(REPO, stored_bytes=1_000_000 * (11 - back)),
                    UsageRecord("acme/retired", stored_bytes=3_000_000 if back > 4 else 0),
                ],
                day,
            )
    finally:
        samples.close()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, registry.url, ADMIN)
        page.get_by_role("link", name="Usage").click()
        chart = page.locator("#usage-history")
        expect(chart).to_be_visible()
        expect(chart.locator("figcaption")).to_contain_text("over time")
        expect(chart.locator(".legend")).to_contain_text(REPO)
        expect(chart.locator(".legend")).to_contain_text("acme/retired")
        # A line a repository (others may have been sampled today by earlier tests).
        expect(chart.locator(f'g.line[data-series="{REPO}"] path')).to_have_count(1)
        expect(chart.locator('g.line[data-series="acme/retired"] path')).to_have_count(1)
        # One point a day for acme/app: the ten days above (and today's, when sampled).
        points = chart.locator(f'g.line[data-series="{REPO}"] circle').count()
        assert points in (10, 11)
        shot(page, "usage-history")
        # The namespace's own chart, on its settings page.
        page.goto(f"{registry.url}/ui/namespace?ns=acme")
        over_time = page.locator(
            "section", has=page.get_by_role("heading", name="Storage over time")
        )
        expect(over_time.locator(f'g.line[data-series="{REPO}"] path')).to_have_count(1)
    finally:
        context.close()
