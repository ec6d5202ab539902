"""Profile cargohold's manifest GET by tag, or small image pushes, under load (py-spy).

Starts cargohold (embedded, same flags and logging as bench/run.py) on loopback, pushes one
small image, then runs wrk against GET /v2/bench/image/manifests/latest (or, with
`--workload push`, pushes small images with 8 clients as the bench does) while py-spy
samples every cargohold process (`--subprocesses`, `--nonblocking` so the workers are not
paused, `--gil`: only the thread holding the GIL, i.e. Python actually running — without it
the idle threads of the thread pools, waiting in Condition.wait, swamp the profile).
Prints the requests/s, the server CPU per request (from /proc), and the top functions by own
("self") and inclusive time, per request, from py-spy's collapsed stacks, which it
keeps (`--out`) for a flame graph (speedscope.app or flamegraph.pl read them).

    .venv/bin/pip install py-spy          # one-off, not a project dependency
    .venv/bin/python bench/profile_manifest.py [--seconds 20] [--connections 32]
        [--workers N] [--out /tmp/cargohold-profile] [--workload push --images 600]

py-spy needs ptrace rights over the server (root, or kernel.yama.ptrace_scope=0).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import ops  # noqa: E402
import servers  # noqa: E402
import wrkload  # noqa: E402

REPO = BENCH.parent
PY_SPY = shutil.which("py-spy") or str(REPO / ".venv" / "bin" / "py-spy")
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:]*)(?::\d+)?\)$")

# frame file -> area, first match wins (for the per-area breakdown)
AREAS = [
    ("cargohold auth", ("cargohold/auth/", "cargohold/http/access.py")),
    ("cargohold http layer", ("cargohold/http/",)),
    ("cargohold core/metadata", ("cargohold/",)),
    ("sqlalchemy / sqlite", ("sqlalchemy/", "sqlite3/")),
    ("starlette", ("starlette/",)),
    ("uvicorn / httptools / h11", ("uvicorn/", "httptools/", "h11/")),
    ("asyncio / uvloop", ("asyncio/", "uvloop/")),
    ("json", ("json/", "orjson")),
    ("logging", ("logging/",)),
    ("prometheus_client", ("prometheus_client/",)),
    ("threads / anyio", ("threading.py", "anyio/", "concurrent/")),
]


def area_of(frame_file: str) -> str:
    for name, needles in AREAS:
        if any(n in frame_file for n in needles):
            return name
    return "other"


def parse_raw(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def short(frame: str) -> str:
    m = FRAME.match(frame)
    if not m:
        return frame
    file = m.group("file")
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({file})"


def frame_file(frame: str) -> str:
    m = FRAME.match(frame)
    return m.group("file") if m else frame


def summarize(stacks: list[tuple[list[str], int]], requests: int, rate: int, top: int) -> str:
    total = sum(c for _, c in stacks)
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    areas: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        # frames[0] is the process/thread label py-spy adds with --subprocesses
        leaf = frames[-1]
        own[short(leaf)] += count
        areas[area_of(frame_file(leaf))] += count
        for f in {short(f) for f in frames[1:]}:
            incl[f] += count
    cpu_s = total / rate
    per_req_us = cpu_s / requests * 1e6 if requests else 0.0

    def us(count: int) -> str:
        return f"{count / rate / requests * 1e6:7.1f} µs" if requests else "-"

    out = [
        f"samples: {total} at {rate}/s = {cpu_s:.2f} CPU s over {requests} requests "
        f"= {per_req_us:.0f} µs per request holding the GIL (sampled)",
        "",
        "## by area (own time of the innermost frame)",
    ]
    out += [f"{us(c)}  {c / total:6.1%}  {name}" for name, c in areas.most_common()]
    out += ["", f"## top {top} functions by own time"]
    out += [f"{us(c)}  {c / total:6.1%}  {name}" for name, c in own.most_common(top)]
    out += ["", f"## top {top} functions by inclusive time"]
    out += [f"{us(c)}  {c / total:6.1%}  {name}" for name, c in incl.most_common(top)]
    return "\n".join(out)


def push_load(base: str, images: int, prefix: str = "profile") -> tuple[int, str]:
    """The bench's small image pushes: 8 clients, 3 layers of 2 KiB + config + manifest."""
    clients, layers = 8, 3
    seeds = [f"{prefix}-{i:05d}" for i in range(images)]
    repos = [f"bench/small{k}" for k in range(clients)]

    async def run() -> float:
        async with ops.new_client(base) as client:
            return await ops.push_small_images(client, repos, seeds, clients, layers, 2048)

    secs = asyncio.run(run())
    requests = images * (2 * (layers + 1) + 1)
    return requests, f"{images} images in {secs:.1f} s = {images / secs:.1f} images/s"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--workers", type=int, help="cargohold workers (default: its own)")
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "cargohold-profile"))
    p.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"))
    p.add_argument("--workload", choices=("manifest-get", "push"), default="manifest-get")
    p.add_argument("--images", type=int, default=600, help="small images pushed (push)")
    a = p.parse_args()
    if not Path(PY_SPY).exists():
        sys.exit("py-spy not found: .venv/bin/pip install py-spy")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="cargohold-profile-", dir="/var/tmp"))
    extra = ["--workers", str(a.workers)] if a.workers else []
    server = servers.cargohold_server(work, a.python, extra)
    try:
        server.start()
        assert server.proc is not None

        async def push() -> None:
            async with ops.new_client(server.base) as client:
                await ops.push_image(client, "bench/image", "latest")

        asyncio.run(push())
        # warm up (imports, caches, connection pools) before sampling
        if a.workload == "push":
            push_load(server.base, 40, prefix="warm-up")
        else:
            wrkload.run_loop(
                True,
                url=server.base + "/v2/bench/image/manifests/latest",
                method="GET",
                headers={"Accept": ops.OCI_MANIFEST},
                connections=a.connections,
                seconds=2,
                max_requests=10**7,
            )
        raw = out / f"{a.workload}.raw.txt"
        spy_cmd = [
            PY_SPY,
            "record",
            "--pid",
            str(server.proc.pid),
            "--subprocesses",
            "--nonblocking",
            "--gil",
            "--rate",
            str(a.rate),
            "--duration",
            "3600",  # an upper bound: stopped with SIGINT once the load ends
        ]
        spy = subprocess.Popen(
            [*spy_cmd, "--format", "raw", "--output", str(raw)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)  # py-spy attaches

        def load() -> tuple[int, str]:
            if a.workload == "push":
                return push_load(server.base, a.images)
            res = wrkload.run_loop(
                True,
                url=server.base + "/v2/bench/image/manifests/latest",
                method="GET",
                headers={"Accept": ops.OCI_MANIFEST},
                connections=a.connections,
                seconds=a.seconds,
                max_requests=10**7,
            )
            return res.requests, (
                f"wrk c={a.connections} {a.seconds}s: {res.rps:,.0f} req/s, p50 "
                f"{res.p50_ms:.2f} ms, p99 {res.p99_ms:.2f} ms, {res.requests} requests, "
                f"{res.errors} errors"
            )

        cpu0 = servers.tree_cpu_seconds(server.proc.pid)
        requests, described = load()
        cpu = servers.tree_cpu_seconds(server.proc.pid) - cpu0
        spy.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
        _, err = spy.communicate(timeout=60)
        if spy.returncode not in (0, -signal.SIGINT):
            print(err[-2000:], file=sys.stderr)
        print(
            f"{described}; server CPU {cpu:.1f} s = {cpu / max(requests, 1) * 1e6:.0f} µs per "
            "request (/proc, all cargohold processes)"
        )
        report = summarize(parse_raw(raw), requests, a.rate, a.top)
        print(report)
        (out / f"{a.workload}.summary.txt").write_text(report + "\n")
        print(f"\nstacks: {raw}  (flame graph: flamegraph.pl or speedscope.app on it)")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
