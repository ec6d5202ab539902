"""`cargohold replication` against the source's data directory while it serves."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.api.oci import push_image

from .conftest import Dest, Source, unique_name
from .test_push import remote_manifest


def cli(source: Source, *args: str, stdin: str | None = None, code: int = 0) -> str:
    command = [sys.executable, "-m", "cargohold", *args, "--data-dir", str(source.data_dir)]
    proc = subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == code, (args, proc.stdout, proc.stderr)
    return proc.stdout + proc.stderr


def test_replication_commands(source: Source, dest: Dest) -> None:
    ns = unique_name("cli")
    endpoint, rule = unique_name("ep-"), unique_name("rule-")
    image = push_image(source.http, f"{ns}/app", "v1")
    push_image(source.http, f"{ns}/app", "nightly")

    out = cli(
        source,
        "replication",
        "endpoint",
        "add",
        endpoint,
        dest.url,
        "--username",
        dest.user,
        "--password-stdin",
        stdin=dest.password + "\n",
    )
    assert endpoint in out and dest.password not in out
    listed = json.loads(cli(source, "replication", "endpoint", "list", "--json"))
    [mine] = [e for e in listed if e["name"] == endpoint]
    assert mine["has_secret"] is True and dest.password not in json.dumps(listed)

    cli(
        source,
        "replication",
        "add",
        rule,
        "--endpoint",
        endpoint,
        "--direction",
        "push",
        "--source",
        f"{ns}/*",
        "--tags",
        "v*",
        "--dest-prefix",
        "copy",
    )
    assert "needs an interval" in cli(
        source,
        "replication",
        "add",
        unique_name("r-"),
        "--endpoint",
        endpoint,
        "--direction",
        "push",
        "--source",
        "x/*",
        "--trigger",
        "schedule",
        code=2,
    )
    rules = json.loads(cli(source, "replication", "list", "--json"))
    [shown] = [r for r in rules if r["name"] == rule]
    assert (shown["source"], shown["tags"], shown["trigger"]) == (f"{ns}/*", "v*", "manual")

    # --wait: the server's worker runs it; the CLI follows.
    out = cli(source, "replication", "run", rule, "--wait", "--json")
    run = json.loads(out[: out.rindex("}") + 1][out.index("{") :])
    assert (run["state"], run["images"], run["blobs_copied"]) == ("succeeded", 1, 2)
    with dest.client() as http:
        assert remote_manifest(http, f"copy/{ns}/app", "v1").content == image.body
        assert remote_manifest(http, f"copy/{ns}/app", "nightly").status_code == 404

    # --here: this process runs it; nothing left to copy.
    assert "succeeded" in cli(source, "replication", "run", rule, "--here")
    history = json.loads(cli(source, "replication", "executions", rule, "--json"))
    assert [x["state"] for x in history] == ["succeeded", "succeeded"]
    assert history[0]["blobs_copied"] == 0 and history[0]["tasks"][0]["state"] == "succeeded"
    assert f"{ns}/app:v1 -> copy/{ns}/app:v1" in cli(
        source, "replication", "executions", rule, "--log"
    )

    assert "used by rule" in cli(source, "replication", "endpoint", "remove", endpoint, code=1)
    cli(source, "replication", "remove", rule)
    cli(source, "replication", "endpoint", "remove", endpoint)
    assert "no replication rule" in cli(source, "replication", "run", rule, code=1)
