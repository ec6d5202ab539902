"""`bench/run.py --smoke` runs every workload of issue 10 end to end and writes its table.

This is not a speed test: it checks that the benchmark works (servers, nginx, token auth,
GC, memory sampling, machine limits, table and JSON), never how fast anything is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# (key, metric) of every workload row issue 10 asks for, for cargohold and Distribution
WORKLOADS = [
    ("push_mono", "mbps"),
    ("push_chunked", "mbps"),
    ("pull_1", "mbps"),
    ("pull_n", "mbps"),
    ("manifest_get_c1", "rps"),
    ("manifest_get_c32", "rps"),
    ("manifest_head_c1", "rps"),
    ("manifest_head_c32", "rps"),
    ("tiny_push", "images_per_s"),
    ("tags_full_c1", "rps"),
    ("tags_full_c8", "rps"),
    ("catalog_c1", "rps"),
    ("catalog_c8", "rps"),
    ("gc", "seconds"),
    ("rss_c32", "process_mb"),
    # the same small-request workloads with token auth on
    ("manifest_get_c1_auth", "rps"),
    ("manifest_get_c32_auth", "rps"),
    ("manifest_head_c1_auth", "rps"),
    ("manifest_head_c32_auth", "rps"),
    ("tiny_push_auth", "images_per_s"),
    ("tags_full_c1_auth", "rps"),
    ("catalog_c1_auth", "rps"),
    ("rss_c32_auth", "process_mb"),
]
# shown without a target
INFORMATIONAL = [("rss_c32", "total_mb"), ("rss_c32_auth", "total_mb"), ("tag_setup", "rps")]
LIMITS = ["limit_sha256", "limit_fsync", "limit_push", "limit_loopback_1", "limit_loopback_n"]
# rows compared with a machine limit (the % of limit column)
AGAINST_LIMITS = ["push_mono", "push_chunked", "pull_1", "pull_n"]


def test_smoke_run_produces_every_workload_with_targets(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,  # generous: CI machines are shared; the bench itself asserts no speed
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "machine: best loopback transfer, 1 client" in done.stdout
    assert "Targets (issue 10):" in done.stdout
    check_outputs(tmp_path)


def check_outputs(out: Path) -> None:
    """The one .json and .md a run wrote: every workload, limit, target and verdict."""
    (json_path,) = out.glob("*.json")
    (md_path,) = out.glob("*.md")
    result = json.loads(json_path.read_text())

    lines = {(line["key"], line["metric"]): line for line in result["summary"]}
    for key, metric in WORKLOADS:
        line = lines[(key, metric)]
        for server in ("cargohold", "distribution"):
            value = line[server]
            assert value is not None and value > 0, (key, metric, server, line)
        assert line["target"], (key, line)
        assert line["verdict"] in ("PASS", "FAIL"), (key, line)
    for key, metric in INFORMATIONAL:
        line = lines[(key, metric)]
        assert line["cargohold"] > 0 and line["distribution"] > 0, line
        assert line["target"] is None and line["verdict"] is None, line
    for key in LIMITS:
        limit = next(line for line in result["summary"] if line["key"] == key)
        assert limit["limit"] > 0, limit
    for key in AGAINST_LIMITS:
        line = lines[(key, "mbps")]
        assert line["limit"] > 0 and line["pct_of_limit"] > 0, line
        assert abs(line["pct_of_limit"] - line["cargohold"] / line["limit"]) < 1e-9
    # the push limit is the lower of the two it is made of
    limits = {line["key"]: line.get("limit") for line in result["summary"]}
    assert limits["limit_push"] == min(limits["limit_sha256"], limits["limit_fsync"])
    # auth really was on, and both servers served the auth rows without errors
    assert any("token auth" in note for note in result["notes"]), result["notes"]
    assert result["machine"]["cores"] >= 1 and result["machine"]["cpu_model"]

    md = md_path.read_text()
    assert "| operation | unit | cargohold | distribution | ratio c/d |" in md
    assert "| machine limit | % of limit | target | result |" in md
    assert "Targets (issue 10):" in md and "## Machine" in md
    for line in result["summary"]:
        assert f"| {line['operation']} |" in md, line["operation"]
