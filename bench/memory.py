"""Resident memory of a server's process tree, sampled while a load runs.

A thread reads VmRSS of every process in the tree (from /proc/<pid>/status) every
`interval` seconds; at the end VmHWM (each process's own peak since it started) is read
too. The request loops block the bench's event loop in subprocess.run, so a thread is what
keeps sampling meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


def _status_kib(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def to_mb(kib: int) -> float:
    return kib * 1024 / 1_000_000


def role(pid: int, root: int) -> str:
    """What a process of a server's tree is: the server itself, or a uvicorn worker..."""
    if pid == root:
        return "main"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return "gone"
    if b"spawn_main" in cmdline:
        return "worker"
    if b"resource_tracker" in cmdline:
        return "resource tracker"
    return "child"


class RssSampler:
    """Peak VmRSS (largest process, and sum over the tree) while running."""

    def __init__(self, pids: Callable[[], list[int]], interval: float = 0.05):
        self._pids = pids
        self.peak_by_pid: dict[int, int] = {}
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_process_kib = 0
        self.peak_total_kib = 0
        self.processes = 0
        self.samples = 0

    def sample(self) -> None:
        by_pid = {pid: s for pid in self._pids() if (s := _status_kib(pid, "VmRSS")) is not None}
        for pid, size in by_pid.items():
            self.peak_by_pid[pid] = max(size, self.peak_by_pid.get(pid, 0))
        sizes = list(by_pid.values())
        if not sizes:
            return
        self.samples += 1
        self.processes = max(self.processes, len(sizes))
        self.peak_process_kib = max(self.peak_process_kib, max(sizes))
        self.peak_total_kib = max(self.peak_total_kib, sum(sizes))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def __enter__(self) -> RssSampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def result(self, pids: list[int], root: int) -> dict:
        hwm = [s for pid in pids if (s := _status_kib(pid, "VmHWM")) is not None]
        by_role: dict[str, float] = {}
        for pid, kib in self.peak_by_pid.items():
            kind = role(pid, root)
            by_role[kind] = max(by_role.get(kind, 0.0), to_mb(kib))
        return {
            # the largest peak per kind of process: main (supervisor), worker...
            "rss_peak_by_role_mb": by_role,
            "rss_peak_process_mb": to_mb(self.peak_process_kib),
            "rss_peak_total_mb": to_mb(self.peak_total_kib),
            "rss_processes": self.processes,
            "rss_samples": self.samples,
            # each process's own peak since it started (setup and blob pushes included)
            "hwm_process_mb": to_mb(max(hwm)) if hwm else None,
        }
