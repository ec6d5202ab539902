"""A SIGKILLed supervisor takes its HTTP worker processes with it (parent_death.py):
orphaned workers would go on holding the port, and a restarted server would fail with
"Address already in use"."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import LiveRegistry

from .test_background_process import alive, children, cmdline, wait_for


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveRegistry]:
    registry = LiveRegistry(tmp_path / "data", {"CARGOHOLD_TEST_WORKERS": "2"})
    try:
        yield registry
    finally:
        # the whole group: a test may have killed the supervisor alone, leaving its workers
        registry.kill()


def worker_pids(server_pid: int) -> list[int]:
    return [p for p in children(server_pid) if "multiprocessing.spawn" in cmdline(p) and alive(p)]


def test_workers_exit_when_the_supervisor_is_killed(server: LiveRegistry) -> None:
    workers = wait_for(
        lambda: len(found := worker_pids(server.process.pid)) == 2 and found, what="2 workers"
    )
    os.kill(server.process.pid, signal.SIGKILL)  # the supervisor alone, not its group
    server.process.wait()
    wait_for(
        lambda: not any(alive(p) for p in workers), timeout=15, what="the orphaned workers to exit"
    )
    wait_for(lambda: port_free(server.port), timeout=15, what="the port to be free again")


def port_free(port: int) -> bool:
    """A restarted server could listen on the port (the background process, killed with
    the supervisor too, may release its inherited copy a moment after the workers)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
