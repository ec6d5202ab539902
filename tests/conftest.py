"""Shared fixtures: a real cargohold server over loopback, started as a subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


POSTGRES_ADMIN_URL = os.environ.get(
    "CARGOHOLD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def scratch_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test; dropped afterwards."""
    name = f"cargohold_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


#: The most a server may take to become ready: generous, because a CI machine running
#: several test workers can be slow to start a process (it is a limit, not a wait).
READY_SECONDS = 120


def add_user(
    data_dir: Path, name: str, password: str, *, admin: bool = False, timeout: float = 120
) -> None:
    """`cargohold user add` on a data directory, before (or while) a server serves it."""
    subprocess.run(
        [sys.executable, "-m", "cargohold", "user", "add", name, *(["--admin"] if admin else []),
         "--password-stdin", "--data-dir", str(data_dir)],
        input=password, text=True, check=True, capture_output=True, timeout=timeout,
    )


class LiveRegistry:
    """A cargohold server process and the URL it listens on."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        # A server given a certificate serves HTTPS (tests/e2e/test_tls.py).
        self.tls = bool((extra_env or {}).get("CARGOHOLD_TLS_CERT"))
        self.url = f"{'https' if self.tls else 'http'}://{self.host}"
        # What the server was started with beyond os.environ: a CLI run against the same
        # stores (PostgreSQL, S3, Redis in scale-out) needs it too.
        self.extra_env = dict(extra_env or {})
        # No background scans unless a test asks for them (CARGOHOLD_SCAN_WORKERS): the
        # scanner attaches SBOM referrers, which would change what other tests count.
        env = {**os.environ, "CARGOHOLD_SCAN_WORKERS": "0", **self.extra_env}
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cargohold",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
                "--workers",
                env.get("CARGOHOLD_TEST_WORKERS", "2"),
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so kill() can take the worker processes down too
        )
        try:
            self._wait_ready()
        except BaseException:
            # Close what a failed start holds, or a later test reports the open file.
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            self._log.close()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                ready = httpx.get(f"{self.url}/readyz", timeout=1, verify=not self.tls)
                if ready.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready in {READY_SECONDS}s: {self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL the whole server, workers included: a crash, not a shutdown (also after
        a test killed part of it, or all of it already)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._log.close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def scaleout_environment(stack: ExitStack) -> dict[str, str]:
    """Settings for servers on PostgreSQL, S3 (moto) and Redis, with the schema migrated.

    Every resource is new (database, bucket, Redis key prefix) and lives as long as `stack`.
    """
    from tests.contract.s3_server import REGION, moto_server, scratch_bucket

    database_url = stack.enter_context(scratch_postgres_database())
    endpoint = stack.enter_context(moto_server())
    _client, bucket = stack.enter_context(scratch_bucket(endpoint))
    env = {
        "CARGOHOLD_DATABASE_URL": database_url,
        "CARGOHOLD_STORAGE_URL": f"s3://{bucket}/registry?endpoint={endpoint}&region={REGION}",
        "CARGOHOLD_REDIS_URL": "redis://127.0.0.1:6379/0",
        "CARGOHOLD_REDIS_PREFIX": f"test-{uuid.uuid4().hex}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    subprocess.run(
        [sys.executable, "-m", "cargohold", "db", "upgrade"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )
    return env


@pytest.fixture(scope="session", params=["embedded", "scaleout"])
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveRegistry]:
    """One live server per setup, shared by the HTTP and end-to-end tests of a session:
    the embedded default (SQLite + files) and scale-out (PostgreSQL + S3 + Redis)."""
    data_dir = tmp_path_factory.mktemp(f"registry-{request.param}") / "data"
    with ExitStack() as stack:
        if request.param == "embedded":
            server = LiveRegistry(data_dir)
        else:
            server = LiveRegistry(data_dir, scaleout_environment(stack))
        yield server
        server.stop()


@pytest.fixture
def client(registry: LiveRegistry) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry.url, timeout=60) as http:
        yield http
