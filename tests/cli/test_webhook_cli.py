"""`cargohold webhook`: add (a generated secret printed once), list, test against a real
receiver on loopback, deliveries, disable, remove; invalid input exits 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.webhooks.receiver import Receiver

from cargohold.webhooks import verify


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cargohold", *args, "--data-dir", str(data_dir)],
        text=True,
        capture_output=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def ok(data_dir: Path, *args: str) -> str:
    result = run(data_dir, *args)
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def test_webhook_commands(tmp_path: Path, receiver: Receiver) -> None:
    data = tmp_path / "data"
    ok(data, "db", "upgrade")
    ok(data, "org", "add", "team")
    assert run(data, "webhook", "add", "team", "ftp://x.test/").returncode == 2
    assert run(data, "webhook", "add", "team", receiver.url(), "--events", "nope").returncode == 2
    assert run(data, "webhook", "add", "nobody", receiver.url()).returncode == 1

    added = json.loads(ok(data, "webhook", "add", "team", receiver.url(), "--json"))
    secret = added["secret"]
    assert len(secret) >= 32 and "pull" not in added["events"]
    given = ok(data, "webhook", "add", "team", receiver.url("/b"), "--secret", "given-secret",
               "--events", "delete,push")  # fmt: skip
    assert "secret" not in given and "push, delete" in given

    listed = json.loads(ok(data, "webhook", "list", "team", "--json"))
    assert [h["url"] for h in listed] == [receiver.url(), receiver.url("/b")]
    assert secret not in json.dumps(listed) and "given-secret" not in json.dumps(listed)

    tested = ok(data, "webhook", "test", "team", str(added["id"]))
    assert "delivered (200)" in tested
    sent = receiver.requests[-1]
    assert verify(secret, sent.body, sent.headers["x-cargohold-signature-256"])
    assert sent.json["type"] == "ping" and sent.json["actor"].startswith("cli:")
    receiver.statuses = [418]
    assert run(data, "webhook", "test", "team", str(added["id"])).returncode == 1
    log = json.loads(ok(data, "webhook", "deliveries", "team", str(added["id"]), "--json"))
    assert [d["last_status_code"] for d in log] == [418, 200]
    assert "codes 418" in ok(data, "webhook", "deliveries", "team", str(added["id"]))

    ok(data, "webhook", "enable", "team", str(added["id"]), "--off")
    assert json.loads(ok(data, "webhook", "list", "team", "--json"))[0]["enabled"] is False
    ok(data, "webhook", "remove", "team", str(added["id"]))
    assert run(data, "webhook", "remove", "team", str(added["id"])).returncode == 1
    assert len(json.loads(ok(data, "webhook", "list", "team", "--json"))) == 1
