"""Live servers with an admin user, on SQLite or on a scratch PostgreSQL database.

PostgreSQL matters here: it refuses text holding NUL and 64-bit values in 32-bit columns,
where SQLite stores anything, so a hostile value that passes on SQLite can be a 500 there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from tests.conftest import LiveRegistry, scratch_postgres_database

ADMIN = "fuzzadmin"
PASSWORD = "fuzz-admin-password"

# Nothing a fuzzer creates may reach out: no webhook, replication or scan workers, and no
# pause after the fuzzer's deliberately wrong credentials.
QUIET = {
    "CARGOHOLD_WEBHOOK_WORKERS": "0",
    "CARGOHOLD_REPLICATION_WORKERS": "0",
    "CARGOHOLD_SCAN_WORKERS": "0",
    "CARGOHOLD_FAILED_LOGIN_LIMIT": "0",
    "CARGOHOLD_TEST_WORKERS": "1",
}


def scale() -> int:
    """CARGOHOLD_FUZZ_SCALE=N: N times the CI example counts, for a longer local run."""
    return max(1, int(os.environ.get("CARGOHOLD_FUZZ_SCALE", "1")))


def derandomized() -> bool:
    """CI draws the same examples every run, so a red run means a change broke something,
    not that a new random example was drawn; longer runs (scale > 1) explore at random,
    and what they find becomes a fixed test."""
    return scale() == 1


def _cli(args: list[str], env: dict[str, str], stdin: str | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "cargohold", *args],
        input=stdin,
        text=True,
        check=True,
        capture_output=True,
        timeout=120,
        env={**os.environ, **env},
    )


@contextmanager
def admin_server(data_dir: Path, backend: str, **extra: str) -> Iterator[LiveRegistry]:
    """A server on `backend` ("sqlite" or "postgresql") with the admin ADMIN/PASSWORD."""
    with ExitStack() as stack:
        env = {**QUIET, **extra}
        if backend == "postgresql":
            env["CARGOHOLD_DATABASE_URL"] = stack.enter_context(scratch_postgres_database())
            _cli(["db", "upgrade"], env)
        _cli(
            ["user", "add", ADMIN, "--admin", "--password-stdin", "--data-dir", str(data_dir)],
            env,
            stdin=PASSWORD,
        )
        server = LiveRegistry(data_dir, env)
        try:
            yield server
        finally:
            server.stop()


def admin_client(server: LiveRegistry) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=(ADMIN, PASSWORD), timeout=60)
