"""Sustained mixed load: many clients pull and push at once; nothing may fail or leak.

Starts one cargohold server (embedded: SQLite + files) on loopback, pushes a few seed
images, then runs `--rounds` rounds of `--clients` concurrent clients for `--seconds` each.
Every client loops over a weighted mix of operations on one keep-alive connection:

  manifest_get  GET a manifest by tag; the bytes must equal what was pushed
  blob_get      GET a layer; its sha256 must match
  blob_head     HEAD a layer; Content-Length must match
  tags_list     GET /tags/list
  blob_push     single-POST monolithic push of a new 16-64 KiB layer
  chunked_push  POST, two PATCHes, PUT of a new layer (three requests, timed as one)
  manifest_put  PUT a manifest under a new tag (after its config and layer)

Pushed images join the pull pool at once. After each round the resident memory (VmRSS) of
every server process is summed. After the last round every image ever pushed is pulled and
checked byte for byte. The run fails (exit 1) on any error, any image that does not pull
back intact, or server RSS after a later round above the first round's by more than
`--rss-tolerance` (the first round is the warm-up: caches, pools and workers fill there).

The client is a minimal raw asyncio HTTP/1.1 client (one process, uvloop when available),
so that on a 2-core machine the server, not httpx, is what is measured; the client's own
CPU time is reported beside the wall time.

    .venv/bin/python bench/load.py            # 64 clients, 60 s, 3 rounds
    .venv/bin/python bench/load.py --short    # 16 clients, 5 s, 2 rounds (the CI test)

Prints a table and writes bench/results/load-<stamp>.json (`--results-dir` elsewhere).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REPOSITORIES = [f"load/app-{i}" for i in range(16)]
WEIGHTS = {
    "manifest_get": 8,
    "blob_get": 6,
    "blob_head": 2,
    "tags_list": 1,
    "blob_push": 1,
    "chunked_push": 1,
    "image_push": 1,  # timed as its three requests: blob_push, blob_push, manifest_put
}
REQUEST_TIMEOUT = 30.0


class LoadError(Exception):
    pass


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- a minimal HTTP/1.1 keep-alive client ------------------------------------------------------
class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        try:
            return await asyncio.wait_for(
                self._request(method, path, body, headers or {}), REQUEST_TIMEOUT
            )
        except BaseException:
            self.close()  # a broken exchange leaves the stream in an unknown state
            raise

    async def _request(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        if method not in ("GET", "HEAD") or body:
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise LoadError(f"{method} {path}: connection closed before the answer")
        status = int(status_line.split(b" ", 2)[1])
        answer: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            key, _, value = line.decode("latin-1").partition(":")
            answer[key.strip().lower()] = value.strip()
        content = await self._body(method, status, answer)
        if answer.get("connection", "").lower() == "close":
            self.close()
        return status, answer, content

    async def _body(self, method: str, status: int, headers: dict[str, str]) -> bytes:
        assert self.reader is not None
        if method == "HEAD" or status in (204, 304):
            return b""
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            await self.reader.readline()
            return b"".join(parts)
        content = await self.reader.read()
        self.close()
        return content

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# -- what was pushed, and what each operation measured -----------------------------------------
@dataclass(frozen=True, slots=True)
class Image:
    repository: str
    tag: str
    manifest: bytes
    blobs: tuple[tuple[str, int], ...]  # (digest, size) of config and layers


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    def ok(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)

    def failed(self, kind: str, message: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if len(self.messages) < 20:
            self.messages.append(f"{kind}: {message}")

    def summary(self) -> dict[str, dict[str, float]]:
        kinds = sorted(set(self.latencies) | set(self.errors))
        return {
            kind: _summarize(self.latencies.get(kind, []), self.errors.get(kind, 0))
            for kind in kinds
        }


def _summarize(latencies: list[float], errors: int) -> dict[str, float]:
    ordered = sorted(latencies)

    def percentile(p: float) -> float:
        if not ordered:
            return 0.0
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return {
        "requests": len(ordered) + errors,
        "errors": errors,
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
    }


# What a client may meet that counts as an error of the operation, not a crash of the bench.
FAILURES = (TimeoutError, LoadError, OSError, asyncio.IncompleteReadError, ValueError)


def expect(what: str, status: int, wanted: int, body: bytes) -> None:
    if status != wanted:
        raise LoadError(f"{what}: HTTP {status} (wanted {wanted}): {body[:200]!r}")


# -- operations ---------------------------------------------------------------------------------
class Client:
    def __init__(
        self, index: int, conn: Connection, images: list[Image], stats: Stats, seed: int
    ) -> None:
        self.index, self.conn, self.images, self.stats = index, conn, images, stats
        self.rng = random.Random(seed)
        self.pushed = 0

    async def timed(
        self,
        kind: str,
        method: str,
        path: str,
        wanted: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> tuple[dict[str, str], bytes]:
        started = time.perf_counter()
        status, answer, content = await self.conn.request(method, path, body, headers)
        expect(f"{method} {path}", status, wanted, content)
        self.stats.ok(kind, time.perf_counter() - started)
        return answer, content

    async def run(self, deadline: float, round_name: str) -> None:
        kinds, weights = zip(*WEIGHTS.items(), strict=True)
        while time.monotonic() < deadline:
            kind = self.rng.choices(kinds, weights)[0]
            try:
                await getattr(self, kind)(round_name)
            except FAILURES as exc:
                self.stats.failed(kind, f"{type(exc).__name__}: {exc}")

    async def manifest_get(self, _round: str) -> None:
        image = self.rng.choice(self.images)
        path = f"/v2/{image.repository}/manifests/{image.tag}"
        _, body = await self.timed(
            "manifest_get", "GET", path, 200, headers={"Accept": OCI_MANIFEST}
        )
        if body != image.manifest:
            raise LoadError(f"{path}: other bytes than pushed")

    async def blob_get(self, _round: str) -> None:
        image = self.rng.choice(self.images)
        digest, _ = self.rng.choice(image.blobs)
        path = f"/v2/{image.repository}/blobs/{digest}"
        _, body = await self.timed("blob_get", "GET", path, 200)
        if sha256(body) != digest:
            raise LoadError(f"{path}: content does not match its digest")

    async def blob_head(self, _round: str) -> None:
        image = self.rng.choice(self.images)
        digest, size = self.rng.choice(image.blobs)
        path = f"/v2/{image.repository}/blobs/{digest}"
        headers, _ = await self.timed("blob_head", "HEAD", path, 200)
        if headers.get("content-length") != str(size):
            raise LoadError(f"HEAD {path}: size {headers.get('content-length')}, pushed {size}")

    async def tags_list(self, _round: str) -> None:
        repository = self.rng.choice(self.images).repository
        await self.timed("tags_list", "GET", f"/v2/{repository}/tags/list", 200)

    def new_layer(self) -> bytes:
        self.pushed += 1
        prefix = f"{self.index}:{self.pushed}:{time.time_ns()}:".encode()
        return prefix + self.rng.randbytes(self.rng.randrange(16 * 1024, 64 * 1024))

    async def blob_push(
        self, _round: str, repository: str | None = None, data: bytes | None = None
    ) -> tuple[str, int]:
        repository = repository or self.rng.choice(REPOSITORIES)
        data = data if data is not None else self.new_layer()
        digest = sha256(data)
        path = f"/v2/{repository}/blobs/uploads/?digest={digest}"
        headers = {"Content-Type": "application/octet-stream"}
        await self.timed("blob_push", "POST", path, 201, data, headers)
        return digest, len(data)

    async def chunked_push(self, _round: str) -> None:
        repository = self.rng.choice(REPOSITORIES)
        data = self.new_layer()
        started = time.perf_counter()
        status, answer, body = await self.conn.request("POST", f"/v2/{repository}/blobs/uploads/")
        expect("POST (chunked)", status, 202, body)
        location = answer["location"]
        half = len(data) // 2
        for start, piece in ((0, data[:half]), (half, data[half:])):
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{start}-{start + len(piece) - 1}",
            }
            status, _, body = await self.conn.request("PATCH", location, piece, headers)
            expect(f"PATCH {location}", status, 202, body)
        separator = "&" if "?" in location else "?"
        status, _, body = await self.conn.request(
            "PUT", f"{location}{separator}digest={sha256(data)}"
        )
        expect(f"PUT {location}", status, 201, body)
        self.stats.ok("chunked_push", time.perf_counter() - started)

    async def image_push(self, round_name: str, repository: str | None = None) -> None:
        repository = repository or self.rng.choice(REPOSITORIES)
        layer = await self.blob_push(round_name, repository)
        config_data = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [layer[0]]},
                "load": f"{round_name}-{self.index}-{self.pushed}",
            }
        ).encode()
        config = await self.blob_push(round_name, repository, config_data)
        manifest = image_manifest(config, [layer])
        tag = f"{round_name}-c{self.index}-{self.pushed}"
        path = f"/v2/{repository}/manifests/{tag}"
        answer, _ = await self.timed(
            "manifest_put", "PUT", path, 201, manifest, {"Content-Type": OCI_MANIFEST}
        )
        if answer.get("docker-content-digest") != sha256(manifest):
            raise LoadError(f"PUT {path}: answered another digest")
        self.images.append(Image(repository, tag, manifest, (config, layer)))


def image_manifest(config: tuple[str, int], layers: list[tuple[str, int]]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config[0], "size": config[1]},
            "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": s} for d, s in layers],
        }
    ).encode()


# -- the server ---------------------------------------------------------------------------------
class Server:
    """`cargohold serve` on a free loopback port, in its own process group."""

    def __init__(self, data_dir: Path, workers: int | None, log_path: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        env = {
            **os.environ,
            "CARGOHOLD_ACCESS_LOG": "false",
            "CARGOHOLD_LOG_LEVEL": "warning",
            # Scanning is its own workload (bench/scan_bench.py); here it would only add
            # background CPU that varies with what was pushed.
            "CARGOHOLD_SCAN_WORKERS": "0",
            "CARGOHOLD_SCAN_ON_PUSH": "false",
        }
        command = [sys.executable, "-m", "cargohold", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--data-dir", str(data_dir)]
        if workers:
            command += ["--workers", str(workers)]
        self.log = log_path.open("wb")
        self.process = subprocess.Popen(
            command, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.log_path = log_path

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if sock.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready in {timeout:.0f} s")

    def rss_kib(self) -> dict[int, int]:
        """VmRSS of the server and every process below it."""
        return {pid: rss for pid in _process_tree(self.process.pid) if (rss := _vm_rss_kib(pid))}

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def _process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces; the fields after its closing ')' do not.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, queue = [], [root]
    while queue:
        pid = queue.pop()
        tree.append(pid)
        queue.extend(children.get(pid, []))
    return tree


def _vm_rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# -- rounds -------------------------------------------------------------------------------------
async def seed_images(port: int, count: int) -> list[Image]:
    images: list[Image] = []
    stats = Stats()
    conn = Connection("127.0.0.1", port)
    client = Client(-1, conn, images, stats, seed=1)
    for number in range(count):  # every repository gets images, so all can be listed
        await client.image_push("seed", REPOSITORIES[number % len(REPOSITORIES)])
    conn.close()
    return images


async def run_round(
    port: int, clients: int, seconds: float, images: list[Image], round_name: str, seed: int
) -> Stats:
    stats = Stats()
    connections = [Connection("127.0.0.1", port) for _ in range(clients)]
    workers = [Client(i, c, images, stats, seed * 1000 + i) for i, c in enumerate(connections)]
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(w.run(deadline, round_name) for w in workers))
    for conn in connections:
        conn.close()
    return stats


async def verify_images(port: int, images: list[Image], concurrency: int = 16) -> list[str]:
    """Pull every image back: manifest bytes by tag, and each blob's digest."""
    failures: list[str] = []
    pending = list(images)

    async def worker() -> None:
        conn = Connection("127.0.0.1", port)
        while pending:
            image = pending.pop()
            try:
                path = f"/v2/{image.repository}/manifests/{image.tag}"
                status, _, body = await conn.request("GET", path, headers={"Accept": OCI_MANIFEST})
                if status != 200 or body != image.manifest:
                    failures.append(f"{path}: HTTP {status}, not the pushed manifest")
                for digest, size in image.blobs:
                    path = f"/v2/{image.repository}/blobs/{digest}"
                    status, _, body = await conn.request("GET", path)
                    if status != 200 or len(body) != size or sha256(body) != digest:
                        failures.append(f"{path}: HTTP {status}, {len(body)} bytes")
            except (TimeoutError, LoadError, OSError, asyncio.IncompleteReadError) as exc:
                failures.append(f"{image.repository}:{image.tag}: {type(exc).__name__}: {exc}")
        conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failures


def client_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- report -------------------------------------------------------------------------------------
def print_report(report: dict) -> None:
    for entry in report["rounds"]:
        print(
            f"\nround {entry['round']}: {entry['requests']} requests in {entry['seconds']:.1f} s "
            f"({entry['requests'] / entry['seconds']:.0f}/s), {entry['errors']} errors, "
            f"server RSS {entry['rss_mb']:.1f} MB, client CPU {entry['client_cpu_s']:.1f} s"
        )
        print(f"  {'operation':<14}{'requests':>10}{'errors':>8}{'p50 ms':>10}{'p99 ms':>10}")
        for kind, line in entry["operations"].items():
            print(
                f"  {kind:<14}{line['requests']:>10}{line['errors']:>8}"
                f"{line['p50_ms']:>10.2f}{line['p99_ms']:>10.2f}"
            )
    for message in report["error_messages"]:
        print(f"  error: {message}")
    rss = report["rss_check"]
    print(
        f"\nRSS after each round (MB): {', '.join(f'{v:.1f}' for v in rss['after_round_mb'])}; "
        f"largest growth over round 1: {rss['growth_pct']:+.1f} % "
        f"(tolerance {rss['tolerance_pct']:.0f} %): {'ok' if rss['ok'] else 'TOO MUCH'}"
    )
    check = report["verification"]
    print(
        f"pulled back {check['images']} images ({check['blobs']} blobs): "
        f"{len(check['failures'])} failures"
    )
    for failure in check["failures"][:20]:
        print(f"  {failure}")
    print("PASS" if report["ok"] else "FAIL")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="16 clients, 5 s, 2 rounds (CI)")
    parser.add_argument("--clients", type=int, help="concurrent clients (default 64)")
    parser.add_argument("--seconds", type=float, help="length of a round (default 60)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3)")
    parser.add_argument("--workers", type=int, help="server workers (default: its own, the CPUs)")
    parser.add_argument("--seed-images", type=int, default=32, help="images pushed before round 1")
    parser.add_argument(
        "--rss-tolerance",
        type=float,
        help="allowed RSS growth over round 1, percent (default 10; --short 50)",
    )
    parser.add_argument("--results-dir", type=Path, default=REPO / "bench" / "results")
    parser.add_argument(
        "--work-dir", type=Path, help="data directory's parent (default: a temp dir)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the clients")
    args = parser.parse_args(argv)
    short = args.short
    args.clients = args.clients or (16 if short else 64)
    args.seconds = args.seconds or (5.0 if short else 60.0)
    args.rounds = args.rounds or (2 if short else 3)
    if args.rss_tolerance is None:
        args.rss_tolerance = 50.0 if short else 10.0
    return args


async def measure(args: argparse.Namespace, server: Server) -> dict:
    images = await seed_images(server.port, args.seed_images)
    rounds, messages, rss_after = [], [], []
    for number in range(1, args.rounds + 1):
        cpu_before, started = client_cpu_seconds(), time.monotonic()
        stats = await run_round(
            server.port, args.clients, args.seconds, images, f"r{number}", args.seed + number
        )
        seconds = time.monotonic() - started
        await asyncio.sleep(1)  # let responses in flight and their buffers settle
        rss = server.rss_kib()
        rss_after.append(sum(rss.values()) / 1024)
        operations = stats.summary()
        messages += stats.messages
        rounds.append(
            {
                "round": number,
                "seconds": round(seconds, 2),
                "requests": sum(int(line["requests"]) for line in operations.values()),
                "errors": sum(int(line["errors"]) for line in operations.values()),
                "operations": operations,
                "rss_mb": round(rss_after[-1], 1),
                "rss_mb_by_pid": {str(pid): round(kib / 1024, 1) for pid, kib in rss.items()},
                "client_cpu_s": round(client_cpu_seconds() - cpu_before, 2),
                "images_total": len(images),
            }
        )
        print(
            f"round {number}: {rounds[-1]['requests']} requests, {rounds[-1]['errors']} errors",
            flush=True,
        )
    failures = await verify_images(server.port, images)
    growth = max((100 * (after / rss_after[0] - 1) for after in rss_after[1:]), default=0.0)
    return {
        "rounds": rounds,
        "error_messages": messages[:20],
        "verification": {
            "images": len(images),
            "blobs": sum(len(image.blobs) for image in images),
            "failures": failures[:100],
        },
        "rss_check": {
            "after_round_mb": [round(v, 1) for v in rss_after],
            "growth_pct": round(growth, 1),
            "tolerance_pct": args.rss_tolerance,
            "ok": growth <= args.rss_tolerance,
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    work = Path(tempfile.mkdtemp(prefix="cargohold-load-", dir=args.work_dir))
    server = Server(work / "data", args.workers, work / "server.log")
    try:
        server.wait_ready()
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            runner = asyncio.run
        measured = runner(measure(args, server))
    finally:
        server.stop()
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    report = {
        "stamp": stamp,
        "config": {
            "clients": args.clients,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "workers": args.workers,
            "seed_images": args.seed_images,
            "weights": WEIGHTS,
            "short": args.short,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        **measured,
    }
    report["ok"] = (
        all(entry["errors"] == 0 for entry in report["rounds"])
        and not report["verification"]["failures"]
        and report["rss_check"]["ok"]
    )
    print_report(report)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"load-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {path}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
