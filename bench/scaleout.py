"""Backing services of the scale-out cargohold (`--scaleout`): PostgreSQL, S3 and Redis.

Every resource is new and private to one benchmark run, and removed by `close()`:

- a scratch PostgreSQL database `cargohold_bench_<hex>` on the local server (dropped
  `WITH (FORCE)`),
- moto's S3 server as a child process on a free loopback port (its spooled objects go
  to a folder in the bench work directory), with one bucket,
- a Redis key prefix `cargohold-bench-<hex>` (its keys are deleted).

The CPU of moto, of the PostgreSQL backends serving the scratch database and of
redis-server is attributed to the scale-out server (see `cpu_trackers`).

The heavy imports (SQLAlchemy, boto3, redis) happen only when the stack is started, so the
default benchmark does not need them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import servers

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
REGION = "us-east-1"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
LOOPBACK = ("127.0.0.1", "localhost", "::1")

# moto's own launcher (moto_server) logs every request through werkzeug at INFO; this is
# the same server with that request log turned down, like the registries' access logs
MOTO_MAIN = (
    "import logging, sys; "
    "logging.getLogger('werkzeug').setLevel(logging.WARNING); "
    "from moto.server import main; main(sys.argv[1:])"
)


class ScaleoutError(RuntimeError):
    pass


def _loopback(url: str, what: str) -> None:
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise ScaleoutError(f"{what} must be on loopback, got host {host!r} in {url}")


class ScaleoutStack:
    def __init__(self, workdir: Path, python: str, postgres_url: str, redis_url: str):
        _loopback(postgres_url, "--postgres-url")
        _loopback(redis_url, "--redis-url")
        self.workdir = workdir
        self.python = python
        self.admin_url = postgres_url
        self.redis_url = redis_url
        token = uuid.uuid4().hex[:12]
        self.database = f"cargohold_bench_{token}"
        self.bucket = f"cargohold-bench-{token}"
        self.redis_prefix = f"cargohold-bench-{token}"
        self.database_url = postgres_url.rsplit("/", 1)[0] + f"/{self.database}"
        self.moto: subprocess.Popen | None = None
        self.moto_port = 0
        self.moto_log = workdir / "moto.log"
        self._db_created = False
        self._redis_used = False
        self.info: dict[str, str] = {}
        self.cleanup_notes: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"http://{servers.HOST}:{self.moto_port}"

    # --- start ------------------------------------------------------------------------

    def start(self) -> dict[str, str]:
        """Create database, S3 server + bucket; migrate; return the server's environment."""
        self._create_database()
        self._start_moto()
        self._create_bucket()
        self._check_redis()
        env = {
            "CARGOHOLD_DATABASE_URL": self.database_url,
            "CARGOHOLD_STORAGE_URL": (
                f"s3://{self.bucket}/registry?endpoint={self.endpoint}&region={REGION}"
            ),
            "CARGOHOLD_STORAGE_REDIRECT": "false",  # blobs stream through cargohold
            "CARGOHOLD_REDIS_URL": self.redis_url,
            "CARGOHOLD_REDIS_PREFIX": self.redis_prefix,
            "AWS_DEFAULT_REGION": REGION,
            **AWS_ENV,
        }
        self._migrate(env)
        return env

    def _admin_engine(self):
        from sqlalchemy import create_engine

        return create_engine(self.admin_url, isolation_level="AUTOCOMMIT")

    def _create_database(self) -> None:
        engine = self._admin_engine()
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{self.database}"')
                self._db_created = True
                self.info["postgres"] = conn.exec_driver_sql("SHOW server_version").scalar()
        finally:
            engine.dispose()

    def _start_moto(self) -> None:
        self.moto_port = servers.free_port()
        tmp = self.workdir / "moto-tmp"  # moto spools large objects to temporary files
        tmp.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1", **AWS_ENV}
        with open(self.moto_log, "wb") as log:
            self.moto = subprocess.Popen(
                [self.python, "-c", MOTO_MAIN, "-H", servers.HOST, "-p", str(self.moto_port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.moto.poll() is not None:
                raise ScaleoutError(
                    f"moto exited with {self.moto.returncode}:\n{self._moto_log_tail()}"
                )
            # any HTTP answer means it listens (moto answers / with 200 or 404)
            if servers._http_status(self.endpoint + "/moto-api/") is not None:
                break
            time.sleep(0.2)
        else:
            raise ScaleoutError(f"moto not ready after 60s:\n{self._moto_log_tail()}")
        self.info["moto"] = self._version("moto")

    def _version(self, dist: str) -> str:
        r = subprocess.run(
            [self.python, "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return r.stdout.strip() or "unknown"

    def _s3(self):
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            config=Config(s3={"addressing_style": "path"}),
        )

    def _create_bucket(self) -> None:
        client = self._s3()
        try:
            client.create_bucket(Bucket=self.bucket)
        finally:
            client.close()

    def _redis(self):
        import redis

        return redis.Redis.from_url(self.redis_url, socket_timeout=10)

    def _check_redis(self) -> None:
        r = self._redis()
        try:
            r.ping()
            self.info["redis"] = str(r.info("server").get("redis_version", "unknown"))
            self._redis_used = True
        finally:
            r.close()

    def _migrate(self, env: dict[str, str]) -> None:
        """`cargohold db upgrade`: serve refuses an unmigrated PostgreSQL schema."""
        r = subprocess.run(
            [self.python, "-m", "cargohold", "db", "upgrade"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=180,
        )
        if r.returncode != 0:
            tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-15:])
            raise ScaleoutError(f"cargohold db upgrade failed ({r.returncode}):\n{tail}")

    def _moto_log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.moto_log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    # --- CPU attribution --------------------------------------------------------------

    def cpu_trackers(self) -> dict[str, servers.CpuTracker]:
        """Cumulative CPU of moto, of this database's PostgreSQL backends and of Redis.

        Redis is the shared redis-server process: anything else using it meanwhile is
        counted too (normally negligible next to the registry's own use).
        """
        moto_pid = self.moto.pid if self.moto is not None else None
        db = f" {self.database} ".encode()
        rport = f":{urlsplit(self.redis_url).port or 6379}".encode()

        def moto_pids() -> list[int]:
            if moto_pid is None or self.moto is None or self.moto.poll() is not None:
                return []
            return servers.tree_pids(moto_pid)

        def pg_backends() -> list[int]:
            # backends retitle themselves "postgres: 15/main: <user> <database> <addr> ..."
            return servers.find_pids(lambda c: c.startswith(b"postgres: ") and db in c)

        def redis_server() -> list[int]:
            return servers.find_pids(lambda c: c.startswith(b"redis-server") and rport in c)

        return {
            "moto": servers.CpuTracker(moto_pids),
            "postgres": servers.CpuTracker(pg_backends),
            "redis": servers.CpuTracker(redis_server),
        }

    def describe(self) -> dict[str, str]:
        return {
            "scaleout_database": f"PostgreSQL {self.info.get('postgres', '?')} on "
            f"{urlsplit(self.admin_url).hostname}:{urlsplit(self.admin_url).port or 5432}, "
            f"scratch database {self.database}",
            "scaleout_s3": f"moto {self.info.get('moto', '?')} server (Python, in-memory S3 "
            f"emulator) as a child process at {self.endpoint}, werkzeug request log off, "
            f"bucket {self.bucket}",
            "scaleout_redis": f"Redis {self.info.get('redis', '?')} at "
            f"{urlsplit(self.redis_url).hostname}:{urlsplit(self.redis_url).port or 6379}, "
            f"prefix {self.redis_prefix}",
        }

    # --- cleanup ----------------------------------------------------------------------

    def close(self) -> None:
        """Stop moto, drop the database, delete the Redis keys; never raises."""
        if self.moto is not None and self.moto.poll() is None:
            try:
                os.killpg(self.moto.pid, signal.SIGTERM)
                try:
                    self.moto.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(self.moto.pid, signal.SIGKILL)
                    self.moto.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired) as e:
                self.cleanup_notes.append(f"moto stop: {e}")
        if self._db_created:
            try:
                engine = self._admin_engine()
                try:
                    with engine.connect() as conn:
                        conn.exec_driver_sql(
                            f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'
                        )
                    self._db_created = False
                finally:
                    engine.dispose()
            except Exception as e:
                self.cleanup_notes.append(f"could not drop database {self.database}: {e}")
        if self._redis_used:
            with contextlib.suppress(Exception):
                r = self._redis()
                try:
                    keys = list(r.scan_iter(match=f"{self.redis_prefix}*", count=1000))
                    for i in range(0, len(keys), 500):
                        r.delete(*keys[i : i + 500])
                    self._redis_used = False
                finally:
                    r.close()
            if self._redis_used:
                self.cleanup_notes.append(f"could not delete Redis keys {self.redis_prefix}*")
