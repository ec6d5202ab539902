"""The background process of `cargohold serve`: scanner, webhooks, replication and the
retention/GC schedule, in one child process of the supervisor.

Why a process of its own: these workers import most of cargohold (the scanner, the
advisory matcher, HTTP clients, the GC) and a scan holds an image's file listing in
memory. In the supervisor they made it the largest process of the server; here the
supervisor stays small (it only migrates, binds and watches), the background work runs
wholly at a lower CPU priority (``background.NICENESS``, set on the process before any
thread starts) and its memory is returned to the system when it restarts.

The supervisor (``BackgroundProcess``) starts it, restarts it when it dies, and stops it
when the server stops (SIGTERM). It stays in the server's process group (so killing the
group kills it), ignores SIGINT (a Ctrl-C reaches the whole group; the supervisor stops it
once the HTTP workers are down) and dies with the supervisor even when that is SIGKILLed:
the kernel sends it SIGKILL (PR_SET_PDEATHSIG), and it watches its parent's pid as well.

This module imports only the standard library (and process_env) at the top: the
supervisor imports it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from cargohold.parent_death import die_with_parent
from cargohold.process_env import SETTINGS_ENV

log = logging.getLogger("cargohold")

STOP_TIMEOUT = 8.0  # seconds the supervisor waits for a clean exit before SIGKILL
RESTART_DELAY = 1.0  # after an unexpected exit; doubled while it keeps dying young
MAX_RESTART_DELAY = 30.0
HEALTHY_AFTER = 30.0  # seconds of life after which an exit is not "dying young"
TRIM_EVERY = 10  # seconds between returning freed memory to the system (glibc)
EXIT_GRACE = 5.0  # seconds the child gives its threads to finish a step when stopped


class BackgroundProcess:
    """The supervisor's handle: ``start()`` once, ``stop()`` at shutdown."""

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        # One thread spawns every incarnation and waits for it: PR_SET_PDEATHSIG fires when
        # the *thread* that forked the child ends, and this one lives as long as the server.
        self._thread = threading.Thread(
            target=self._run, name="cargohold-background-supervisor", daemon=True
        )
        self._thread.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "cargohold.background_process", str(os.getpid())],
            stdin=subprocess.DEVNULL,
            close_fds=True,  # never inherit the listening socket
        )

    def _run(self) -> None:
        delay = RESTART_DELAY
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    return
                proc = self._proc = self._spawn()
            started = time.monotonic()
            code = proc.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= HEALTHY_AFTER:
                delay = RESTART_DELAY
            log.warning(
                "background process %d exited with status %s; restarting in %.0f s",
                proc.pid,
                code,
                delay,
            )
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, MAX_RESTART_DELAY)

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(parent: int) -> None:
    """The child: start the workers, wait for SIGTERM or the parent's death, stop them."""
    # SIGKILL: certain even if this process is stuck; its work is transactional
    die_with_parent(parent, signal.SIGKILL)
    with contextlib.suppress(OSError, AttributeError):
        from cargohold.background import NICENESS

        os.nice(NICENESS)  # before any thread: every thread of the process inherits it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A flag, not an Event: Event.set() takes a lock, and a handler that runs while the
    # main thread holds it (inside Event.wait) deadlocks the process for good.
    signal.signal(signal.SIGTERM, _request_stop)

    import json

    from cargohold.config import Settings

    settings = Settings.model_validate(json.loads(os.environ[SETTINGS_ENV]))
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")

    from cargohold.gc_schedule import start_schedule
    from cargohold.replication import start_replication_workers
    from cargohold.scan.worker import start_scan_workers
    from cargohold.webhooks import start_webhook_workers

    stops = [
        start(settings)
        for start in (
            start_schedule,
            start_scan_workers,
            start_webhook_workers,
            start_replication_workers,
        )
    ]
    trim = _malloc_trim()
    ticks = 0
    while not _stop_requested:
        time.sleep(1.0)
        if os.getppid() != parent:  # the supervisor is gone (not on Linux, say)
            break
        ticks += 1
        if ticks % TRIM_EVERY == 0:
            # A scan of a large image builds its file listing and package inventory in
            # memory; give the freed pages back instead of keeping the peak for good.
            trim()
    for event in stops:
        if event is not None:
            event.set()
    # Workers check their stop event between steps; give a running step a moment, then
    # leave (the threads are daemons: a long scan is retried from its lease later).
    deadline = time.monotonic() + EXIT_GRACE
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    # End here, whatever still runs: interpreter shutdown would pull the modules from
    # under a step still running, or wait for a thread that does not end (what a step
    # leaves undone is in the database's hands, as after a crash).
    logging.shutdown()
    os._exit(0)


_stop_requested = False


def _request_stop(signum: int, frame: object) -> None:
    global _stop_requested
    _stop_requested = True


def _malloc_trim() -> Callable[[], None]:
    try:
        import ctypes

        libc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return lambda: None
    return lambda: libc_trim(0)


if __name__ == "__main__":
    main(int(sys.argv[1]))
