"""Garbage collection over 10,000 blobs: cargohold (online) vs Distribution (offline).

Both registries get the same content over HTTP: `--blobs` small blobs, of which half are
named by tagged manifests (100 layers each) and half are never referenced (what a failed
push leaves behind). Then each collects:

- cargohold, twice on fresh data, while its server keeps running: `cargohold gc --server
  URL --grace-hours 0`, which asks the running registry to collect through its admin API
  (as its schedule does: the headline figure), and `cargohold gc --grace-hours 0
  --data-dir ...`, a process that opens the stores itself (`local_seconds`);
- Distribution: `docker-registry garbage-collect config.yml`, which needs the registry
  stopped (it is, while it runs), as Distribution's documentation requires.

Repeated `--runs` times on fresh data; prints the median seconds and what each removed,
and writes bench/results/gc-<stamp>.md and .json.

    .venv/bin/python bench/gc_bench.py            # 10,000 blobs, 3 runs
    .venv/bin/python bench/gc_bench.py --blobs 2000 --runs 1
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ops
import servers

REPO = Path(__file__).resolve().parent.parent
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYERS_PER_IMAGE = 100
# The admin `cargohold gc --server` signs in as; created at the server's first start.
ADMIN = ("gc-bench", "bench-" + secrets.token_hex(12))


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def load(base: str, count: int, tag_prefix: str, auth: tuple[str, str] | None = None) -> None:
    """`count` blobs; the first half named by tagged manifests, the rest by nothing."""
    payloads = [f"{tag_prefix} blob {n}".encode() * 4 for n in range(count)]
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=base, auth=auth, timeout=60, limits=limits) as http:
        gate = asyncio.Semaphore(16)

        async def upload(data: bytes) -> None:
            # POST then PUT: Distribution 2.8 lacks the single-POST monolithic upload.
            async with gate:
                started = await http.post("/v2/bench/gc/blobs/uploads/")
                started.raise_for_status()
                location = started.headers["Location"]
                joiner = "&" if "?" in location else "?"  # keep Distribution's _state
                done = await http.put(f"{location}{joiner}digest={sha(data)}", content=data)
                if done.status_code != 201:
                    raise RuntimeError(f"blob refused by {base}: {done.status_code} {done.text}")

        await asyncio.gather(*(upload(p) for p in payloads))
        config = b"{}"
        await upload(config)
        referenced = payloads[: count // 2]
        for start in range(0, len(referenced), LAYERS_PER_IMAGE):
            layers = referenced[start : start + LAYERS_PER_IMAGE]
            body = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": MANIFEST,
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": sha(config),
                        "size": len(config),
                    },
                    "layers": [
                        {
                            "mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": sha(x),
                            "size": len(x),
                        }
                        for x in layers
                    ],
                }
            ).encode()
            r = await http.put(
                f"/v2/bench/gc/manifests/{tag_prefix}-{start}",
                content=body,
                headers={"Content-Type": MANIFEST},
            )
            if r.status_code != 201:
                raise RuntimeError(f"manifest refused by {base}: {r.status_code} {r.text}")


def blob_files(root: Path) -> int:
    return sum(1 for path in root.rglob("data") if path.is_file()) if root.exists() else 0


async def _scans_drained(base: str) -> float:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        return await ops.scan_queue_drained(http, timeout=1800) or 0.0


def _access_token(base: str) -> str:
    answer = httpx.post(
        f"{base}/api/v1/users/{ADMIN[0]}/tokens", json={"name": "gc"}, auth=ADMIN, timeout=30
    )
    answer.raise_for_status()
    return answer.json()["token"]


def _cargohold_once(workdir: Path, count: int, python: str, via_server: bool) -> dict[str, float]:
    """Load a fresh cargohold, wait for its scans, then time one `cargohold gc`."""
    admin = {"CARGOHOLD_ADMIN_USER": ADMIN[0], "CARGOHOLD_ADMIN_PASSWORD": ADMIN[1]}
    name = "cargohold" if via_server else "cargohold-local"
    cargo = servers.cargohold_server(workdir, python, [], name=name, extra_env=admin)
    cargo.start()
    try:
        asyncio.run(load(cargo.base, count, "c", ADMIN))
        # cargohold scans what was pushed; the collection is measured once that is done
        # (Distribution scans nothing), as the push rows of bench/core.py do.
        drained = asyncio.run(_scans_drained(cargo.base))
        # Automation signs in with a personal access token (checked by a hash, where a
        # password costs an argon2 verification on purpose).
        secret = _access_token(cargo.base) if via_server else ""
        env = {**os.environ, "CARGOHOLD_LOG_LEVEL": "error", "CARGOHOLD_PASSWORD": secret}
        where = (
            ["--server", cargo.base, "--username", ADMIN[0]]
            if via_server
            else ["--data-dir", str(workdir / f"{name}-data")]
        )
        started = time.perf_counter()
        done = subprocess.run(
            [python, "-m", "cargohold", "gc", "--grace-hours", "0", "--json", *where],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        seconds = time.perf_counter() - started
        report = json.loads(done.stdout)
        return {
            "seconds": seconds,
            "gc_seconds": report["seconds"],
            "blobs_deleted": report["blobs_deleted"],
            "server_kept_serving": float(cargo.alive()),
            "scan_drain_s": drained,
        }
    finally:
        cargo.stop()


def run_once(workdir: Path, count: int, python: str) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    remote = _cargohold_once(workdir, count, python, via_server=True)
    local = _cargohold_once(workdir, count, python, via_server=False)
    results["cargohold"] = {
        **remote,
        "local_seconds": local["seconds"],
        "local_gc_seconds": local["gc_seconds"],
        "local_blobs_deleted": local["blobs_deleted"],
    }

    dist = servers.distribution_server(workdir)
    dist.start()
    try:
        asyncio.run(load(dist.base, count, "d"))
    finally:
        dist.stop()  # Distribution's collector must not run beside the registry
    root = workdir / "distribution-data"
    before = blob_files(root / "docker/registry/v2/blobs")
    started = time.perf_counter()
    subprocess.run(
        [servers.DIST_BIN, "garbage-collect", str(workdir / "distribution.yml")],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    results["distribution"] = {
        "seconds": seconds,
        "gc_seconds": seconds,
        "blobs_deleted": before - blob_files(root / "docker/registry/v2/blobs"),
        "server_kept_serving": 0.0,
    }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--python", default=str(REPO / ".venv/bin/python"))
    args = parser.parse_args()
    runs = []
    for n in range(args.runs):
        workdir = Path(tempfile.mkdtemp(prefix="cargohold-gcbench-", dir="/var/tmp"))
        try:
            runs.append(run_once(workdir, args.blobs, args.python))
            print(f"run {n + 1}: {runs[-1]}", flush=True)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = {
        name: {key: statistics.median(run[name][key] for run in runs) for key in runs[0][name]}
        for name in ("cargohold", "distribution")
    }
    ratio = summary["distribution"]["seconds"] / summary["cargohold"]["seconds"]
    lines = [
        f"# GC over {args.blobs:,} blobs ({args.blobs // 2:,} garbage), median of {args.runs}",
        "",
        "| registry | seconds (wall, whole command) | blobs deleted | registry kept serving |",
        "| --- | ---: | ---: | --- |",
    ]
    c = summary["cargohold"]
    table = [
        ("cargohold (`gc --server`: the server collects)", c["seconds"], c["blobs_deleted"]),
        (
            "cargohold (`gc --data-dir`: its own process)",
            c["local_seconds"],
            c["local_blobs_deleted"],
        ),
        (
            "distribution",
            summary["distribution"]["seconds"],
            summary["distribution"]["blobs_deleted"],
        ),
    ]
    for name, seconds, deleted in table:
        serving = "no (stopped, as required)" if name == "distribution" else "yes (online)"
        lines.append(f"| {name} | {seconds:.2f} | {int(deleted):,} | {serving} |")
    local_ratio = summary["distribution"]["seconds"] / c["local_seconds"]
    lines += [
        "",
        f"Distribution / cargohold time: {ratio:.2f}x with --server, {local_ratio:.2f}x with "
        "its own process (> 1: cargohold faster).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = REPO / "bench/results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"gc-{stamp}.md").write_text(text)
    (out / f"gc-{stamp}.json").write_text(json.dumps({"runs": runs, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
