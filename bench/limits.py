"""The machine's own limits, measured in the same run as the registries.

- sha256: hashlib over a large buffer in one call (what a registry must at least do to a
  pushed blob), MB/s on one core;
- fsync'd disk write: the blob written in 1 MiB pieces to a file on the data directories'
  disk, then fsync'd, MB/s;
- loopback transfer: the same blob file fetched over loopback by the same raw-socket reader
  the blob pull uses, from nginx (Debian's) with sendfile on and with sendfile off
  (read/write through 1 MiB buffers); the faster is the limit. Without nginx a small
  Python os.sendfile server stands in (and the notes say so);
- tiny GETs: nginx serving a small file to wrk at c=1 and c=32, what a web server reaches
  here for requests like a manifest GET (for reference).

nginx runs as a child process in the foreground (`daemon off`) with a generated
configuration on free loopback ports, in its own session, and is stopped at the end.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from servers import HOST, free_port

MB = 1_000_000
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
TINY_FILE = "tiny.json"


def sha256_rate(data: bytes | bytearray | memoryview, min_seconds: float) -> float:
    """MB/s of hashlib.sha256 over the whole buffer in one update, repeated."""
    n, t0 = 0, time.perf_counter()
    while True:
        hashlib.sha256(data).digest()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= min_seconds:
            return n * len(data) / dt / MB


def fsync_write_rate(data: bytes | bytearray | memoryview, directory: Path) -> float:
    """MB/s writing the buffer in 1 MiB pieces to a new file, fsync included."""
    path = directory / f"fsync-probe-{os.getpid()}"
    view = memoryview(data)
    os.sync()  # start from clean page cache state, like the push measurement
    try:
        t0 = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for off in range(0, len(view), 1 << 20):
                os.write(fd, view[off : off + (1 << 20)])
            os.fsync(fd)
        finally:
            os.close(fd)
        dt = time.perf_counter() - t0
    finally:
        path.unlink(missing_ok=True)
    return len(view) / dt / MB


NGINX_CONF = """
{user}
worker_processes auto;
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000;
    server {{
        listen {host}:{port_sendfile};
        root {root};
        sendfile on;
        tcp_nopush on;
    }}
    server {{
        listen {host}:{port_copy};
        root {root};
        sendfile off;
        output_buffers 2 1m;
    }}
}}
"""


@dataclass
class FileServer:
    """nginx (or the Python fallback) serving one directory on loopback."""

    workdir: Path
    blob_name: str = "blob"
    tool: str = ""
    ports: dict[str, int] = field(default_factory=dict)  # mode ("sendfile", "read/write") -> port
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.workdir / "www"

    def start(self, blob: bytes | bytearray | memoryview) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / self.blob_name).write_bytes(blob)
        (self.root / TINY_FILE).write_bytes(b'{"schemaVersion":2}' * 30)  # ~600 bytes
        if NGINX:
            self._start_nginx()
        else:
            self._start_python()
        deadline = time.monotonic() + 20
        for port in self.ports.values():
            while not _accepts(port):
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                    self.stop()
                    raise RuntimeError(f"{self.tool} did not start: {self.log_tail()}")
                time.sleep(0.05)

    def _start_nginx(self) -> None:
        prefix = self.workdir / "nginx"
        prefix.mkdir(parents=True, exist_ok=True)
        self.ports = {"sendfile": free_port(), "read/write": free_port()}
        conf = prefix / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                # as root nginx would switch its workers to nobody, who can't read the
                # private bench directory; stay the same user
                user="user root root;" if os.geteuid() == 0 else "",
                prefix=prefix,
                host=HOST,
                port_sendfile=self.ports["sendfile"],
                port_copy=self.ports["read/write"],
                root=self.root,
            )
        )
        version = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip()
        self.tool = version.replace("nginx version: ", "") or "nginx"
        self.procs.append(
            subprocess.Popen(
                # -e: the start-up error log too (a non-root user can't write the default one)
                [
                    NGINX,
                    "-p",
                    str(prefix),
                    "-e",
                    str(prefix / "error.log"),
                    "-c",
                    str(conf),
                    "-g",
                    "daemon off;",
                ],
                stdout=subprocess.DEVNULL,
                stderr=open(prefix / "stderr.log", "wb"),  # noqa: SIM115 - lives with nginx
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        )

    def _start_python(self) -> None:
        self.tool = "python os.sendfile server (nginx not installed)"
        port = free_port()
        self.ports = {"sendfile": port}
        self.procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "serve", str(port), str(self.root)],
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        )

    def base(self, mode: str) -> str:
        return f"http://{HOST}:{self.ports[mode]}"

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def log_tail(self) -> str:
        log = self.workdir / "nginx" / "error.log"
        try:
            return log.read_text(errors="replace")[-600:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is not None:
                continue
            try:
                os.killpg(p.pid, signal.SIGTERM)  # master and workers: one process group
                p.wait(timeout=10)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        self.procs.clear()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


# --- fallback file server (only when nginx is missing) -----------------------------------


def _serve(port: int, root: Path) -> None:
    """GET /<name> with keep-alive, body by os.sendfile; one thread per connection."""
    import threading

    def handle(conn: socket.socket) -> None:
        # headers and body go out in two writes: without this, Nagle + delayed ACK
        # add ~40 ms to every small response
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode()
                path = root / target.lstrip("/").split("?")[0]
                if not path.is_file() or path.parent != root:
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    continue
                size = path.stat().st_size
                conn.sendall(
                    f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n".encode()
                )
                with open(path, "rb") as f:
                    conn.sendfile(f)

    srv = socket.create_server((HOST, port), backlog=128)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        _serve(int(sys.argv[2]), Path(sys.argv[3]))
