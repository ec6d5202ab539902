"""The CLI and the server of one data directory, for the access-control tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from tests.conftest import LiveRegistry

from .creds import ANONYMOUS, Principal, bearer_header, get_token

CLI_TIMEOUT = 60
PARALLEL = max(2, (os.cpu_count() or 2) + 1)
SYNC_SECONDS = 2.5
T = TypeVar("T")

#: ``python -c`` program: the cargohold CLI with datetime.now() running {days} days late.
PAST_CLOCK = """
import datetime, runpy, sys
Real = datetime.datetime
class Past(Real):
    @classmethod
    def now(cls, tz=None):
        late = Real.now(tz) - datetime.timedelta(days={days})
        return cls.combine(late.date(), late.timetz())
datetime.datetime = Past
sys.argv = ["cargohold", *sys.argv[1:]]
runpy.run_module("cargohold", run_name="__main__", alter_sys=True)
"""


class Realm:
    """A data directory configured through the CLI, and the server that serves it."""

    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.data_dir = root / "data"
        self.env = {**os.environ, **(env or {})}
        self.extra_env = env or {}
        self.registry: LiveRegistry | None = None
        self._changed = 0.0  # time.monotonic() when the last CLI command finished

    # -- CLI

    def cli(self, *args: str, stdin: str | None = None, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "cargohold", *args, "--data-dir", str(self.data_dir)]
        try:
            proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                                  timeout=CLI_TIMEOUT, env=self.env, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"$ {' '.join(cmd)}\ntimed out after {CLI_TIMEOUT}s", pytrace=False)
        self._changed = time.monotonic()
        if check and proc.returncode != 0:
            pytest.fail(f"$ {' '.join(cmd)}\nexit {proc.returncode}\nstdout: {proc.stdout}\n"
                        f"stderr: {proc.stderr}", pytrace=False)
        return proc

    def cli_in_the_past(self, days: int, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the CLI with its clock (``datetime.now``) set ``days`` back: what it creates with
        ``--expires-in-days`` smaller than ``days`` is already expired today."""
        script = PAST_CLOCK.format(days=days)
        cmd = [sys.executable, "-c", script, *args, "--data-dir", str(self.data_dir)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CLI_TIMEOUT,
                              env=self.env, check=False)
        self._changed = time.monotonic()
        if proc.returncode != 0:
            pytest.fail(f"$ cargohold {' '.join(args)} (clock -{days}d)\nexit {proc.returncode}"
                        f"\nstdout: {proc.stdout}\nstderr: {proc.stderr}", pytrace=False)
        return proc

    def add_user(self, name: str, *, admin: bool = False) -> Principal:
        password = f"pw-{name}-{os.urandom(6).hex()}"
        flags = ["--admin"] if admin else []
        self.cli("user", "add", name, *flags, "--password-stdin", stdin=password)
        return Principal(name, name, password)

    def add_org(self, name: str, *, public: bool = False) -> None:
        self.cli("org", "add", name, *(["--public"] if public else []))

    def add_member(self, namespace: str, role: str, *, user: str | None = None,
                   team: str | None = None, repository: str | None = None) -> None:
        who = ["--user", user] if user else ["--team", str(team)]
        where = ["--repository", repository] if repository else []
        self.cli("member", "add", namespace, *who, "--role", role, *where)

    def add_team(self, org: str, team: str, *members: str) -> None:
        self.cli("team", "add", org, team)
        for member in members:
            self.cli("team", "member", org, team, member)

    def set_visibility(self, name: str, value: str) -> None:
        self.cli("visibility", "set", name, value)

    def add_robot(self, namespace: str, name: str, actions: str, *,
                  repositories: Sequence[str] = (), expires_in_days: int | None = None,
                  days_ago: int = 0) -> Principal:
        args = ["robot", "add", namespace, name, "--actions", actions]
        for repo in repositories:
            args += ["--repository", repo]
        if expires_in_days is not None:
            args += ["--expires-in-days", str(expires_in_days)]
        run = partial(self.cli_in_the_past, days_ago) if days_ago else self.cli
        out = json.loads(run(*args, "--json").stdout)
        assert out["name"] == f"robot${namespace}+{name}", out
        assert isinstance(out["secret"], str), out
        assert out["secret"], out
        return Principal(f"robot:{namespace}+{name}", out["name"], out["secret"])

    def revoke_robot(self, namespace: str, name: str) -> None:
        self.cli("robot", "revoke", namespace, name)

    def add_token(self, user: Principal, name: str, *, expires_in_days: int | None = None,
                  days_ago: int = 0) -> Principal:
        args = ["token", "add", str(user.username), name]
        if expires_in_days is not None:
            args += ["--expires-in-days", str(expires_in_days)]
        run = partial(self.cli_in_the_past, days_ago) if days_ago else self.cli
        out = json.loads(run(*args, "--json").stdout)
        assert out["name"] == name, out
        assert isinstance(out["token"], str), out
        assert out["token"], out
        return Principal(f"pat:{user.username}/{name}", user.username, out["token"])

    def revoke_token(self, user: Principal, name: str) -> None:
        self.cli("token", "revoke", str(user.username), name)

    def sync(self) -> None:
        """Give a running server time to see the CLI changes (SYNC_SECONDS after the last)."""
        time.sleep(max(0.0, self._changed + SYNC_SECONDS - time.monotonic()))

    @staticmethod
    def parallel(*calls: Callable[[], T]) -> list[T]:
        """Run independent CLI calls (each a subprocess) concurrently; results in order."""
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            futures = [pool.submit(call) for call in calls]
            return [future.result() for future in futures]

    # -- server

    def start(self) -> LiveRegistry:
        self.registry = LiveRegistry(self.data_dir, extra_env=self.extra_env)
        return self.registry

    def stop(self) -> None:
        if self.registry is not None:
            self.registry.stop()
            self.registry = None

    @property
    def url(self) -> str:
        assert self.registry is not None, "server not started"
        return self.registry.url

    @property
    def host(self) -> str:
        assert self.registry is not None, "server not started"
        return self.registry.host

    def client(self, principal: Principal = ANONYMOUS, token: str | None = None
               ) -> httpx.Client:
        """An httpx client for the registry, with basic credentials or a bearer token."""
        headers = bearer_header(token) if token else None
        auth = None if token else principal.auth
        return httpx.Client(base_url=self.url, auth=auth, headers=headers, timeout=60,
                            follow_redirects=True)

    def token(self, principal: Principal = ANONYMOUS, *scopes: str) -> str:
        return get_token(self.url, principal, scopes)
