"""`cargohold proxy add/list/show/remove` on a data directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def cli(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cargohold", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )


def test_proxy_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    added = cli(
        data,
        "proxy",
        "add",
        "hub",
        "https://registry-1.docker.io",
        "--username",
        "me",
        "--password-stdin",
        "--remote-prefix",
        "library",
        "--tag-ttl",
        "60",
        "--no-stale-on-error",
        "--stale-on-404",
        stdin="hunter2\n",
    )
    assert added.returncode == 0, added.stderr
    assert "hub caches https://registry-1.docker.io" in added.stdout

    listed = cli(data, "proxy", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (rule,) = json.loads(listed.stdout)
    assert rule["namespace"] == "hub"
    assert rule["remote_prefix"] == "library"
    assert rule["mirror_of"] == "docker.io"
    assert rule["has_password"] is True
    assert rule["tag_ttl_seconds"] == 60
    assert rule["serve_stale_on_error"] is False
    assert rule["serve_stale_on_404"] is True
    assert "hunter2" not in listed.stdout
    # the password is stored encrypted, never in clear
    assert b"hunter2" not in (data / "meta.db").read_bytes()

    shown = cli(data, "proxy", "show", "hub")
    assert shown.returncode == 0 and "registry-1.docker.io" in shown.stdout
    assert "hunter2" not in shown.stdout

    again = cli(data, "proxy", "add", "hub", "https://example.com")
    assert again.returncode == 1 and "already" in again.stderr
    invalid = cli(data, "proxy", "add", "a/b", "https://example.com")
    assert invalid.returncode == 2
    bad_url = cli(data, "proxy", "add", "other", "not-a-url")
    assert bad_url.returncode == 2 and "URL" in bad_url.stderr

    removed = cli(data, "proxy", "remove", "hub")
    assert removed.returncode == 0, removed.stderr
    assert cli(data, "proxy", "list").stdout.strip() == "no pull-through caches"
    assert cli(data, "proxy", "remove", "hub").returncode == 1
