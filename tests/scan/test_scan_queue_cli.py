"""`cargohold scan queue` and `cargohold scan rescan` over real stores."""

from __future__ import annotations

import json
from pathlib import Path

from cargohold.core.registry import Registry
from cargohold.stores import Stores

from .test_service import app_layers, cargohold, push_image


def test_rescan_queues_jobs_that_queue_shows(registry: Registry, stores: Stores, data_dir: Path):
    digest = push_image(registry, "team/app", "1.0", app_layers())
    stores.close()

    shown = json.loads(cargohold(data_dir, "scan", "queue", "--json").stdout)
    assert shown["counts"]["queued"] == 1
    [pushed] = shown["jobs"]
    assert (pushed["kind"], pushed["repository"], pushed["digest"]) == ("push", "team/app", digest)

    out = cargohold(data_dir, "scan", "rescan", "team/app:1.0").stdout
    assert f"team/app@{digest}" in out
    cargohold(data_dir, "scan", "rescan", "--all")
    shown = json.loads(cargohold(data_dir, "scan", "queue", "--json", "--state", "queued").stdout)
    assert [j["kind"] for j in shown["jobs"]] == ["rescan-all", "manual", "push"]

    table = cargohold(data_dir, "scan", "queue").stdout
    assert "3 queued" in table and "(every image)" in table

    assert "not both" in cargohold(data_dir, "scan", "rescan", code=2).stderr
    assert (
        "not both" in cargohold(data_dir, "scan", "rescan", "team/app:1.0", "--all", code=2).stderr
    )
    missing = cargohold(data_dir, "scan", "rescan", "team/app:9.9", code=1).stderr
    assert "team/app:9.9" in missing
    assert "--state" in cargohold(data_dir, "scan", "queue", "--state", "lost", code=2).stderr
