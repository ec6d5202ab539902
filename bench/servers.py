"""Start, probe and stop the registries under test (loopback only)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

DIST_BIN = "/usr/bin/docker-registry"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def tree_pids(root: int) -> list[int]:
    """The pid and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rfind(b")") + 2 :].split()
        children.setdefault(int(rest[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _stat(pid: int) -> list[bytes] | None:
    """Fields 3... of /proc/<pid>/stat (after the command name), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2 :].split()


def pid_cpu_ticks(pid: int) -> int | None:
    """user+system CPU clock ticks of one live process, None when it is gone."""
    rest = _stat(pid)
    # fields 14 and 15 of stat (utime, stime); rest starts at field 3
    return None if rest is None else int(rest[11]) + int(rest[12])


def tree_cpu_seconds(root: int) -> float:
    """user+system CPU seconds of a live process tree (live processes only)."""
    return sum(pid_cpu_ticks(pid) or 0 for pid in tree_pids(root)) / CLK_TCK


class CpuTracker:
    """CPU seconds of a changing set of processes, never going down.

    `pids()` names the processes to count at each call; a process that has gone keeps the
    CPU it had when last seen (what it used after that is lost, so this undercounts a
    little for short-lived processes). Used for the scale-out stack: moto, the PostgreSQL
    backends of the bench database and redis-server.
    """

    def __init__(self, pids: Callable[[], Iterable[int]]):
        self._pids = pids
        self._last: dict[tuple[int, int], int] = {}

    def __call__(self) -> float:
        for pid in self._pids():
            rest = _stat(pid)
            if rest is None:
                continue
            # keyed by (pid, start time, field 22), so a reused pid is a new process
            self._last[(pid, int(rest[19]))] = int(rest[11]) + int(rest[12])
        return sum(self._last.values()) / CLK_TCK

    @property
    def seen(self) -> int:
        return len(self._last)


def find_pids(match: Callable[[bytes], bool]) -> list[int]:
    """Pids whose /proc/<pid>/cmdline (NUL-separated) satisfies `match`."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if cmdline and match(cmdline):
            out.append(int(entry))
    return out


def _http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, ValueError):
        return None


@dataclass
class Server:
    name: str
    cmd: list[str]
    port: int
    ready_path: str
    workdir: Path
    env: dict[str, str] | None = None
    # answers of ready_path that mean "up" (Distribution with token auth answers /v2/ 401)
    ready_codes: tuple[int, ...] = (200,)
    # CPU of helper processes counted as part of this server (the scale-out stack:
    # moto, PostgreSQL backends, Redis), by part name; each returns cumulative seconds
    extra_cpu: dict[str, Callable[[], float]] = field(default_factory=dict)
    cpu_label: str = ""  # name of the server's own processes in cpu_parts (default: name)
    proc: subprocess.Popen | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"{self.name}.log"

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process without waiting (start_all launches several, then waits)."""
        log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 90.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} before ready:\n"
                    + self.log_tail()
                )
            if _http_status(self.base + self.ready_path) in self.ready_codes:
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n" + self.log_tail())

    def own_cpu_seconds(self) -> float:
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        return tree_cpu_seconds(self.proc.pid)

    def cpu_parts(self) -> dict[str, float]:
        """Cumulative CPU seconds: the server's own process tree, then each helper."""
        parts = {self.cpu_label or self.name: self.own_cpu_seconds()}
        for part, fn in self.extra_cpu.items():
            parts[part] = fn()
        return parts

    def cpu_seconds(self) -> float:
        return sum(self.cpu_parts().values())

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # the server runs in its own session: signal its process group only
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])


def start_all(group: list[Server], timeout: float = 90.0) -> None:
    """Launch every server, then wait for each: their start-ups overlap."""
    for server in group:
        server.launch()
    for server in group:
        server.wait_ready(timeout)


def distribution_server(workdir: Path, auth_yaml: str = "", label: str = "") -> Server:
    """Distribution on a free port; `auth_yaml` adds an `auth:` section (token auth), and
    `label` names its config and log files (the data directory is always the same)."""
    port = free_port()
    root = workdir / "distribution-data"
    root.mkdir(parents=True, exist_ok=True)
    config = workdir / f"distribution{label}.yml"
    config.write_text(
        f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {HOST}:{port}
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
# Debian's 2.8.2 refuses ?n= above 1,000 (400 PAGINATION_NUMBER_INVALID, the CVE-2023-2253
# fix); the catalog measurement asks for every repository in one page
catalog:
  maxentries: 100000
"""
        + auth_yaml
    )
    server = Server(
        name="distribution",
        cmd=[DIST_BIN, "serve", str(config)],
        port=port,
        ready_path="/v2/",
        workdir=workdir,
        ready_codes=(200, 401) if auth_yaml else (200,),
    )
    server.log_path = workdir / f"distribution{label}.log"
    return server


def cargohold_server(
    workdir: Path,
    python: str,
    extra_args: list[str],
    name: str = "cargohold",
    extra_env: dict[str, str] | None = None,
) -> Server:
    """cargohold serve; `extra_env` (CARGOHOLD_DATABASE_URL...) selects the scale-out setup."""
    port = free_port()
    data = workdir / f"{name}-data"
    data.mkdir(parents=True, exist_ok=True)
    cmd = [
        python,
        "-m",
        "cargohold",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--data-dir",
        str(data),
        *extra_args,
    ]
    return Server(
        name=name,
        cmd=cmd,
        port=port,
        ready_path="/readyz",
        workdir=workdir,
        # same logging stance as the Distribution config: errors only, no access log
        env={
            **os.environ,
            **(extra_env or {}),
            "PYTHONUNBUFFERED": "1",
            "CARGOHOLD_LOG_LEVEL": "error",
            "CARGOHOLD_ACCESS_LOG": "false",
        },
    )


def cargohold_available(python: str, repo: Path) -> tuple[bool, str]:
    """True when `python -m cargohold serve --help` works."""
    if not Path(python).exists():
        return False, f"{python} not found"
    try:
        r = subprocess.run(
            [python, "-m", "cargohold", "serve", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=repo,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    if r.returncode != 0:
        lines = (r.stderr or r.stdout).strip().splitlines()
        return False, lines[-1] if lines else f"exit {r.returncode}"
    return True, r.stdout


if __name__ == "__main__":  # manual smoke test
    ok, msg = cargohold_available(sys.executable, Path.cwd())
    print(ok, msg[:200])
