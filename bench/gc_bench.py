"""Garbage collection over 10,000 blobs: cargohold (online) vs Distribution (offline).

Both registries get the same content over HTTP: `--blobs` small blobs, of which half are
named by tagged manifests (100 layers each) and half are never referenced (what a failed
push leaves behind). Then each collects:

- cargohold: `cargohold gc --grace-hours 0` while its server keeps running;
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


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def load(base: str, count: int, tag_prefix: str) -> None:
    """`count` blobs; the first half named by tagged manifests, the rest by nothing."""
    payloads = [f"{tag_prefix} blob {n}".encode() * 4 for n in range(count)]
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
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


def run_once(workdir: Path, count: int, python: str) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    cargo = servers.cargohold_server(workdir, python, [])
    cargo.start()
    try:
        asyncio.run(load(cargo.base, count, "c"))
        # cargohold scans what was pushed; the collection is measured once that is done
        # (Distribution scans nothing), as the push rows of bench/core.py do.
        drained = asyncio.run(_scans_drained(cargo.base))
        env = {**os.environ, "CARGOHOLD_LOG_LEVEL": "error"}
        started = time.perf_counter()
        done = subprocess.run(
            [
                python,
                "-m",
                "cargohold",
                "gc",
                "--grace-hours",
                "0",
                "--json",
                "--data-dir",
                str(workdir / "cargohold-data"),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        seconds = time.perf_counter() - started
        report = json.loads(done.stdout)
        results["cargohold"] = {
            "seconds": seconds,
            "gc_seconds": report["seconds"],
            "blobs_deleted": report["blobs_deleted"],
            "server_kept_serving": float(cargo.alive()),
            "scan_drain_s": drained,
        }
    finally:
        cargo.stop()

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
    for name, row in summary.items():
        serving = "yes (online)" if row["server_kept_serving"] else "no (stopped, as required)"
        lines.append(
            f"| {name} | {row['seconds']:.2f} | {int(row['blobs_deleted']):,} | {serving} |"
        )
    lines += ["", f"Distribution / cargohold time: {ratio:.2f}x (> 1: cargohold faster)."]
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
