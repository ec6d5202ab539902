"""SIGKILL the registry at random moments while clients push; nothing acknowledged is lost.

Client threads push concurrently (single-POST and POST+PUT monolithic blobs, chunked
PATCHes, cross-repository mounts, manifests under new tags). The test kills the whole
server (all worker processes) with SIGKILL after a random pause, restarts it on the same
data directory, and checks every push acknowledged since the last check, and every push a
crash left in doubt, before the next kill. At the end every acknowledged push is checked
again after one last crash.

Environment, for longer manual runs:
  CARGOHOLD_CRASH_SETUP    embedded (default: SQLite + files) or scaleout (PostgreSQL,
                           S3 on moto, Redis; about 20 s a kill point here)
  CARGOHOLD_CRASH_KILLS    kill points (default 20)
  CARGOHOLD_CRASH_CLIENTS  pushing threads (default 4)
  CARGOHOLD_CRASH_LARGE    share of blobs of 1-6 MiB, so kills land mid-body (default 0.05)
  CARGOHOLD_CRASH_SEED     replay a failing run's kill pauses and blob sizes
  CARGOHOLD_CRASH_WORKERS  server worker processes (default 1: each restart of 2 costs
                           three imports of the app; 2 sends chunks to different workers)
e.g. CARGOHOLD_CRASH_KILLS=200 CARGOHOLD_CRASH_LARGE=0.2 for a long run.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

import httpx
from tests.conftest import LiveRegistry, scaleout_environment
from tests.reliability import crash_checks
from tests.reliability.crash_clients import BlobSizes, CrashClient, Target
from tests.reliability.crash_ledger import Ledger

KILLS = int(os.environ.get("CARGOHOLD_CRASH_KILLS", "20"))
CLIENTS = int(os.environ.get("CARGOHOLD_CRASH_CLIENTS", "4"))
LARGE_SHARE = float(os.environ.get("CARGOHOLD_CRASH_LARGE", "0.05"))
# Scale-out (PostgreSQL, S3 on moto, Redis) restarts slower and moto is slow: too slow for
# every CI run, so it is a manual mode.
SETUP = os.environ.get("CARGOHOLD_CRASH_SETUP", "embedded")
WORKERS = os.environ.get("CARGOHOLD_CRASH_WORKERS", "1")
# Pause between a restart's checks and the next kill: long enough for pushes to finish,
# short enough that many are in flight at the kill.
PAUSE_SECONDS = (0.05, 0.8)
READY_SECONDS = 120

Item = TypeVar("Item")


class Checked:
    """How far each Ledger list has been checked."""

    def __init__(self) -> None:
        self.upto: dict[str, int] = {}

    def new(self, key: str, items: Sequence[Item]) -> Sequence[Item]:
        start = self.upto.get(key, 0)
        self.upto[key] = len(items)
        return items[start:]


class PatientRegistry(LiveRegistry):
    """LiveRegistry that waits longer for readiness: on a busy CI machine a restart of
    several worker processes has taken more than LiveRegistry's 30 s."""

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready in {READY_SECONDS} s: {self.log_path.read_text()}")


def start_server(data_dir: Path, env: dict[str, str]) -> LiveRegistry:
    return PatientRegistry(
        data_dir,
        {
            **env,
            "CARGOHOLD_TEST_WORKERS": WORKERS,
            "CARGOHOLD_ACCESS_LOG": "false",
            "CARGOHOLD_LOG_LEVEL": "warning",
        },
    )


def check(server: LiveRegistry, ledger: Ledger, checked: Checked | None, when: str) -> list[str]:
    """Problems with what the ledger holds (only what is new since `checked`, if given)."""
    blobs, manifests, blobs_in_doubt, manifests_in_doubt = ledger.snapshot()
    groups: list[tuple[str, Sequence[object], Callable[[httpx.Client, object], str | None]]] = [
        ("blobs", blobs, crash_checks.acknowledged_blob),  # type: ignore[list-item]
        ("manifests", manifests, crash_checks.acknowledged_manifest),  # type: ignore[list-item]
        ("blobs_in_doubt", blobs_in_doubt, crash_checks.blob_in_doubt),  # type: ignore[list-item]
        ("manifests_in_doubt", manifests_in_doubt, crash_checks.manifest_in_doubt),  # type: ignore[list-item]
    ]
    problems = []
    with httpx.Client(base_url=server.url, timeout=30, follow_redirects=True) as http:
        for key, items, verify in groups:
            for item in checked.new(key, items) if checked else items:
                problem = verify(http, item)
                if problem:
                    problems.append(f"{when}: {problem}")
    return problems


def test_acknowledged_pushes_survive_sigkill(tmp_path: Path) -> None:
    with ExitStack() as stack:
        if SETUP == "scaleout":
            env = scaleout_environment(stack)
            crash_and_check(tmp_path / "data", env, KILLS, stale_locks=True)
        else:
            assert SETUP == "embedded", f"CARGOHOLD_CRASH_SETUP={SETUP}: embedded or scaleout"
            crash_and_check(tmp_path / "data", {}, KILLS, stale_locks=False)


def crash_and_check(data_dir: Path, env: dict[str, str], kills: int, stale_locks: bool) -> None:
    seed = int(os.environ.get("CARGOHOLD_CRASH_SEED", random.randrange(1 << 32)))
    print(f"crash test seed {seed} (replay with CARGOHOLD_CRASH_SEED={seed})")
    rng = random.Random(seed)
    ledger, target, stop, checked = Ledger(), Target(), threading.Event(), Checked()
    sizes = BlobSizes(large_share=LARGE_SHARE)
    clients = [
        CrashClient(i, target, ledger, stop, rng.randrange(1 << 32), sizes, stale_locks)
        for i in range(CLIENTS)
    ]
    threads = [threading.Thread(target=c.run, name=f"crash-client-{c.index}") for c in clients]
    problems: list[str] = []
    server = start_server(data_dir, env)
    alive = True
    try:
        target.up(server.url)
        for thread in threads:
            thread.start()
        for kill in range(1, kills + 1):
            time.sleep(rng.uniform(*PAUSE_SECONDS))
            target.down()
            server.kill()
            alive = False
            started = time.monotonic()
            server = start_server(data_dir, env)
            alive = True
            restarted = time.monotonic()
            # Clients wait while the check runs, so the next kill finds only fresh work.
            problems += check(server, ledger, checked, f"after kill {kill}")
            target.up(server.url)
            print(
                f"kill {kill}: restart {restarted - started:.1f} s, "
                f"check {time.monotonic() - restarted:.1f} s"
            )
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        # One last crash with nothing in flight, then everything acknowledged, again.
        server.kill()
        alive = False
        server = start_server(data_dir, env)
        alive = True
        problems += check(server, ledger, None, "at the end")
    finally:
        stop.set()
        target.down()
        if alive:
            server.kill()
        for thread in threads:
            thread.join(timeout=60)

    blobs, manifests, blobs_in_doubt, manifests_in_doubt = ledger.snapshot()
    summary = (
        f"seed {seed}: {kills} kills; acknowledged {len(blobs)} blobs and "
        f"{len(manifests)} manifests; in doubt {len(blobs_in_doubt)} blobs and "
        f"{len(manifests_in_doubt)} manifests; broken sessions resumed "
        f"{ledger.sessions_resumed} (refused afterwards {ledger.sessions_refused}), "
        f"gone {ledger.sessions_gone}"
    )
    print(summary)
    failures = ledger.violations + problems
    assert not failures, f"{summary}\n" + "\n".join(failures[:20])
    # The run proves something only if the clients got work done and kills hit it mid-way.
    assert len(blobs) >= kills // 2 and len(manifests) >= 1, summary
    interrupted = len(blobs_in_doubt) + len(manifests_in_doubt) + ledger.sessions_resumed
    assert interrupted >= kills // 3, summary
