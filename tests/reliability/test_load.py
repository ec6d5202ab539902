"""bench/load.py --short: mixed pulls and pushes by many clients, zero errors, no leak.

The bench script starts its own server, runs two rounds of 16 clients for 5 s, pulls back
every image pushed, and measures the server's resident memory after each round; this test
runs it as CI would and holds it to its report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LOAD_SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "load.py"
OPERATIONS = {
    "manifest_get",
    "blob_get",
    "blob_head",
    "tags_list",
    "blob_push",
    "chunked_push",
    "manifest_put",
}


def test_short_load_has_no_errors_and_everything_pushed_pulls_back(tmp_path: Path) -> None:
    results = tmp_path / "results"
    run = subprocess.run(
        [
            sys.executable,
            str(LOAD_SCRIPT),
            "--short",
            "--seed-images",
            "16",
            "--results-dir",
            str(results),
            "--work-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = run.stdout + run.stderr
    written = list(results.glob("load-*.json"))
    assert len(written) == 1, output  # no report: the script broke before the end
    report = json.loads(written[0].read_text())

    assert run.returncode == 0, output
    assert report["ok"] is True, output
    assert len(report["rounds"]) == 2
    for entry in report["rounds"]:
        assert entry["errors"] == 0, output
        assert set(entry["operations"]) == OPERATIONS, output
        assert all(line["requests"] > 0 for line in entry["operations"].values()), output
        assert entry["rss_mb"] > 0
    # Images pushed during the rounds joined the 16 seed images, and all pulled back intact.
    verification = report["verification"]
    assert verification["images"] > 16 and verification["failures"] == [], output
    rss = report["rss_check"]
    assert rss["ok"] and rss["growth_pct"] <= rss["tolerance_pct"] == 50.0, output
