"""The benchmark proper; `python bench/run.py` is the entry point (see bench/README.md).

The servers (cargohold embedded, optionally cargohold scale-out, Distribution) are started
here, measured interleaved (A, B, C, A, B, C...) and stopped at the end; results go to
bench/results/<timestamp>.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import goals
import httpx
import limits
import memory
import ops
import report
import servers
import wrkload
from report import CARGOHOLD, DISTRIBUTION, SCALEOUT
from rows import AUTH_KEYS, MACHINE, RSS_LOOPS, build_summary

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV_PY = REPO / ".venv" / "bin" / "python"
MB = 1_000_000  # throughput is reported in MB/s (10^6 bytes per second)


@dataclass
class Config:
    runs: int
    blob_bytes: int
    chunk_bytes: int
    pull_clients: int
    tags: int
    tag_concurrency: int
    page_n: int
    loop_seconds: float
    max_requests: int
    walk_seconds: float
    use_wrk: bool
    pull_httpx: bool
    tiny_images: int = 200
    tiny_clients: int = 8
    tiny_layers: int = 3
    tiny_layer_bytes: int = 2048
    catalog_repos: int = 2000
    catalog_concurrency: int = 16
    gc_blobs: int = 10_000
    gc_runs: int = 3
    auth: bool = True
    limits: bool = True
    hash_seconds: float = 1.0
    smoke: bool = False
    loopback_server: str = ""  # what served the loopback limit (nginx version)
    order: tuple[str, ...] = (CARGOHOLD, DISTRIBUTION)

    def describe(self) -> dict:
        return {
            "runs": self.runs,
            "blob_size_mib": self.blob_bytes // ops.MiB,
            "patch_chunk_mib": self.chunk_bytes // ops.MiB,
            "upload_piece_mib": ops.PIECE // ops.MiB,
            "pull_clients": self.pull_clients,
            "tags": self.tags,
            "tag_setup_concurrency": self.tag_concurrency,
            "tags_page_n": self.page_n,
            "loop_seconds": self.loop_seconds,
            "loop_max_requests": self.max_requests,
            "walk_seconds": self.walk_seconds,
            "request_loop_tool": "wrk -t1 (separate process)"
            if self.use_wrk and wrkload.WRK
            else "httpx/asyncio (separate process)",
            "push_tool": "httpx/asyncio in the runner process, body from memory in 1 MiB pieces",
            "pull_tool": "httpx/asyncio in the runner process"
            if self.pull_httpx
            else "raw asyncio sockets in the runner process (recv_into a 1 MiB buffer)",
            "walk_tool": "http.client keep-alive (separate process)",
            "server_logging": "distribution: level error, accesslog disabled; cargohold: "
            "CARGOHOLD_LOG_LEVEL=error, CARGOHOLD_ACCESS_LOG=false",
            "order": "interleaved per measurement: " + ", ".join(self.order) + ", ...",
            "small_images": f"{self.tiny_images} per run, {self.tiny_clients} clients, each "
            f"{self.tiny_layers} layers of {self.tiny_layer_bytes} B + config + manifest "
            "(POST+PUT per blob, PUT manifest), httpx in the runner process",
            "tiny_images": self.tiny_images,
            "catalog_repositories": self.catalog_repos,
            "loopback_server": self.loopback_server or "not measured",
            "gc_blobs": self.gc_blobs,
            "gc_runs": self.gc_runs,
            "token_auth": "cargohold: its own /token (ES256), admin created at start; "
            "distribution: token auth (realm/issuer/rootcertbundle) against the bench's "
            "token server (ES256, kid = libtrust key id); token fetched by the Docker token "
            "flow before each measurement and sent on every request"
            if self.auth
            else "off",
            "machine_limits": "measured in every run" if self.limits else "off",
            "smoke": self.smoke,
        }

    @property
    def wrk_ok(self) -> bool:
        """wrk's duration is whole seconds; shorter loops (smoke) use the raw loop."""
        return self.use_wrk and self.loop_seconds >= 1


@dataclass
class Target:
    name: str
    server: servers.Server
    client: httpx.AsyncClient | None = None
    blob_digest: str = ""
    manifest_digest: str = ""
    state: dict = field(default_factory=dict)
    # token auth phase: the scopes asked for, and the Authorization header they gave
    scopes: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.server.base


REPO_BLOBS = "bench/blobs"
REPO_IMAGE = "bench/image"
# not "bench/tags": cargohold's access check takes /v2/bench/tags/tags/list for repository
# "bench" (its route pattern stops at the first "/tags/"), so token auth would refuse it
REPO_TAGS = "bench/taglist"
REPO_SMALL = "bench/small{k}"  # one repository per small-image push client
REPO_CATALOG = "catalog/r{i:05d}"


def machine_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot (/proc/stat, steal included)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / servers.CLK_TCK


STARTED = time.monotonic()


def log(msg: str) -> None:
    """A progress line, with the seconds since start."""
    msg = f"[{time.monotonic() - STARTED:6.1f}s] {msg}"
    print(msg, flush=True)


class Bench:
    def __init__(self, cfg: Config, targets: list[Target], workdir: Path):
        self.cfg = cfg
        self.targets = targets
        self.workdir = workdir
        self.results: dict[str, dict[str, list[dict]]] = {t.name: {} for t in targets}
        self.notes: list[str] = []
        self.data = bytearray(os.urandom(cfg.blob_bytes))
        self.counter = 0
        self.files: limits.FileServer | None = None  # nginx for the machine limits

    # --- helpers ----------------------------------------------------------------------

    def fresh_blob(self, target: Target) -> tuple[memoryview, str]:
        """Same random body with a unique 8-byte prefix, so every push is a new blob."""
        self.counter += 1
        self.data[:8] = struct.pack(">Q", self.counter)
        return memoryview(self.data), ops.sha256_digest(self.data)

    def _server_cpu(self, server: servers.Server) -> dict[str, float]:
        return server.cpu_parts()

    @staticmethod
    def _cpu_delta(rec: dict, before: dict[str, float], after: dict[str, float]) -> None:
        """server_cpu_s, and per process group when the server has helpers (scale-out)."""
        parts = {k: after.get(k, 0.0) - v for k, v in before.items()}
        rec["server_cpu_s"] = sum(parts.values())
        if len(parts) > 1:
            rec["server_cpu_parts_s"] = parts

    def _cpu_snapshot(self) -> tuple[float, float]:
        """(machine busy CPU s, CPU s of our processes: servers, runner, finished children)."""
        ours = sum(t.server.cpu_seconds() for t in self.targets)
        ours += time.process_time() + wrkload.children_cpu()
        return machine_busy_seconds(), ours

    async def measure(self, key: str, target: Target, fn, run: int, prep=None) -> None:
        server = target.server
        rec: dict = {"run": run}
        if not server.alive():
            rec["error"] = "server not running"
        else:
            if prep is not None:
                await prep(target)
            busy0, ours0 = self._cpu_snapshot()
            s0 = self._server_cpu(server)
            c0, t0 = time.process_time(), time.perf_counter()
            try:
                if goals.base_key(key) in RSS_LOOPS:
                    rec.update(await self._with_rss(server, fn, target))
                else:
                    rec.update(await fn(target))
            except Exception as e:  # record and go on with the other measurements
                rec["error"] = f"{type(e).__name__}: {e}"[:400]
            elapsed = time.perf_counter() - t0
            rec.setdefault("wall_s", elapsed)
            self._cpu_delta(rec, s0, self._server_cpu(server))
            rec.setdefault("client_cpu_s", time.process_time() - c0)
            busy1, ours1 = self._cpu_snapshot()
            # CPU used on the machine by anything else (other work, the idle peer server...)
            rec["foreign_cpu_s"] = max(0.0, (busy1 - busy0) - (ours1 - ours0))
            rec["foreign_cpu_share"] = rec["foreign_cpu_s"] / (elapsed * (os.cpu_count() or 1))
        self.results[target.name].setdefault(key, []).append(rec)
        shown = {
            k: round(v, 2)
            for k, v in rec.items()
            if k
            in (
                "mbps",
                "rps",
                "images_per_s",
                "rss_peak_process_mb",
                "p50_ms",
                "p99_ms",
                "walks_per_s",
                "server_cpu_s",
                "client_cpu_s",
                "foreign_cpu_share",
            )
        }
        log(f"  run {run} {key:<18} {target.name:<18} {rec.get('error') or shown}")

    @staticmethod
    async def _with_rss(server: servers.Server, fn, target: Target) -> dict:
        """Run fn while sampling the resident memory of the server's process tree."""
        assert server.proc is not None
        root = server.proc.pid
        sampler = memory.RssSampler(lambda: servers.tree_pids(root))
        with sampler:
            rec = await fn(target)
        rec.update(sampler.result(servers.tree_pids(root), root))
        return rec

    # --- setup ------------------------------------------------------------------------

    async def setup(self, target: Target) -> None:
        cfg = self.cfg
        target.client = ops.new_client(target.base, connections=64)
        c = target.client
        view, digest = self.fresh_blob(target)
        await ops.push_monolithic(c, REPO_BLOBS, view, digest)
        n = await ops.pull_blob(c, REPO_BLOBS, digest, verify=True)
        assert n == cfg.blob_bytes, (n, cfg.blob_bytes)
        target.blob_digest = digest
        manifest, mdigest = await ops.push_image(c, REPO_IMAGE, "latest")
        await ops.get_manifest(c, REPO_IMAGE, "latest", "GET")
        await ops.get_manifest(c, REPO_IMAGE, mdigest, "HEAD")
        target.manifest_digest = mdigest
        # tags: same manifest (blobs pushed to the tags repo first), cfg.tags tags
        await ops.push_image(c, REPO_TAGS, "base")
        t0 = time.process_time()
        s0 = self._server_cpu(target.server)
        secs = await ops.push_tags(c, REPO_TAGS, manifest, cfg.tags, cfg.tag_concurrency)
        rec = {
            "run": 0,
            "rps": cfg.tags / secs,
            "wall_s": secs,
            "client_cpu_s": time.process_time() - t0,
        }
        self._cpu_delta(rec, s0, self._server_cpu(target.server))
        self.results[target.name]["tag_setup"] = [rec]
        tags = await ops.list_tags(c, REPO_TAGS)
        want = {ops.tag_name(i) for i in range(cfg.tags)} | {"base"}
        if set(tags) != want:
            raise ops.BenchError(f"tags/list returned {len(tags)} tags, want {len(want)}")
        # the small-image repositories exist from the start, so the catalog is the same
        # size for every catalog measurement
        small = [REPO_SMALL.format(k=k) for k in range(cfg.tiny_clients)]
        await ops.push_small_images(
            c, small, [f"setup-{k}" for k in range(len(small))], len(small), 1, 64
        )
        names = [REPO_CATALOG.format(i=i) for i in range(cfg.catalog_repos)]
        csecs = await ops.make_repositories(c, REPO_IMAGE, manifest, names, cfg.catalog_concurrency)
        every = {REPO_BLOBS, REPO_IMAGE, REPO_TAGS, *small, *names}
        # one page holding every repository: ask for more than there are
        target.state["catalog_n"] = len(every) + 100
        listed, more = await ops.list_catalog(c, target.state["catalog_n"])
        if more or set(listed) != every:
            raise ops.BenchError(
                f"catalog ?n={target.state['catalog_n']} returned {len(listed)} "
                f"repositories{' and a next link' if more else ''}, want {len(every)} in one page"
            )
        # cargohold queued a scan of every image pushed above; measure a registry at rest,
        # not one still digesting the setup (what scanning costs shows in tiny_push).
        drained = await ops.scan_queue_drained(c, timeout=1800)
        log(
            f"  setup {target.name}: blob {cfg.blob_bytes // ops.MiB} MiB, image "
            f"{mdigest[:19]}..., {cfg.tags} tags in {secs:.1f}s, "
            f"{cfg.catalog_repos} repositories in {csecs:.1f}s"
            + ("" if drained is None else f", their scans done {drained:.1f}s later")
        )

    async def setup_auth(self, target: Target) -> None:
        """Auth is really on (401 without a token), and the token flow gives access."""
        ref = f"/v2/{REPO_IMAGE}/manifests/latest"
        async with ops.new_client(target.base, connections=1) as anonymous:
            r = await anonymous.get(ref, headers={"Accept": ops.OCI_MANIFEST})
            if r.status_code != 401:
                raise ops.BenchError(f"{target.name} with auth: {r.status_code} without a token")
        target.client = ops.new_client(target.base, connections=64)
        await self.prep_auth(target)
        await ops.get_manifest(target.client, REPO_IMAGE, "latest", "GET")
        log(f"  setup {target.name} (token auth): 401 without a token, 200 with one")

    # --- measurements -----------------------------------------------------------------

    async def prep_auth(self, t: Target) -> None:
        """Untimed: a fresh token by the Docker token flow, sent on every request after."""
        import tokenauth

        token = await asyncio.to_thread(tokenauth.fetch_token, t.base, t.scopes)
        t.headers = {"Authorization": f"Bearer {token}"}
        assert t.client is not None
        t.client.headers.update(t.headers)

    async def m_tiny_push(self, t: Target) -> dict:
        cfg = self.cfg
        self.counter += 1
        seeds = [f"p{self.counter:05d}-{i:04d}" for i in range(cfg.tiny_images)]
        repos = [REPO_SMALL.format(k=k) for k in range(cfg.tiny_clients)]
        secs = await ops.push_small_images(
            t.client, repos, seeds, cfg.tiny_clients, cfg.tiny_layers, cfg.tiny_layer_bytes
        )
        requests = cfg.tiny_images * (2 * (cfg.tiny_layers + 1) + 1)
        result = {
            "images_per_s": cfg.tiny_images / secs,
            "rps": requests / secs,
            "requests": requests,
            "wall_s": secs,
        }
        # cargohold scans every pushed image, after a burst of pushes (scan_quiet_seconds):
        # wait for those scans, so that they do not run into the next measurement, and
        # report the rate with scanning included. Distribution scans nothing.
        drained = await ops.scan_queue_drained(t.client, timeout=300)
        if drained is not None:
            result["scan_drain_s"] = drained
            result["scanned_per_s"] = cfg.tiny_images / (secs + drained)
        return result

    def catalog_loop(self, conns: int):
        async def fn(t: Target) -> dict:
            return self._loop(t, f"/v2/_catalog?n={t.state['catalog_n']}", "GET", conns, None)

        return fn

    async def prep_push(self, t: Target) -> None:
        """Untimed: a new blob body and its digest, and dirty pages flushed to disk."""
        t.state["blob"] = self.fresh_blob(t)
        os.sync()

    async def m_push_mono(self, t: Target) -> dict:
        view, digest = t.state.pop("blob")
        t0 = time.perf_counter()
        await ops.push_monolithic(t.client, REPO_BLOBS, view, digest)
        dt = time.perf_counter() - t0
        return {"mbps": len(view) / dt / MB, "wall_s": dt}

    async def m_push_chunked(self, t: Target) -> dict:
        view, digest = t.state.pop("blob")
        t0 = time.perf_counter()
        await ops.push_chunked(t.client, REPO_BLOBS, view, digest, self.cfg.chunk_bytes)
        dt = time.perf_counter() - t0
        return {"mbps": len(view) / dt / MB, "wall_s": dt}

    async def prep_pull(self, t: Target) -> None:
        """Untimed: the pushes just measured (Distribution's never fsynced) flushed to disk,
        so that their writeback does not run into the pull; the blob read once, so that
        both registries serve it from the page cache, as nginx serves its file."""
        await asyncio.to_thread(os.sync)
        await ops.raw_pull(t.base, REPO_BLOBS, t.blob_digest, 1)

    async def m_pull_1(self, t: Target) -> dict:
        t0 = time.perf_counter()
        if self.cfg.pull_httpx:
            n = await ops.pull_blob(t.client, REPO_BLOBS, t.blob_digest)
        else:
            n = await ops.raw_pull(t.base, REPO_BLOBS, t.blob_digest, 1)
        dt = time.perf_counter() - t0
        if n != self.cfg.blob_bytes:
            raise ops.BenchError(f"short read {n}")
        return {"mbps": n / dt / MB, "wall_s": dt}

    async def m_pull_n(self, t: Target) -> dict:
        k = self.cfg.pull_clients
        t0 = time.perf_counter()
        if self.cfg.pull_httpx:
            n = await ops.pull_concurrent(t.client, REPO_BLOBS, t.blob_digest, k)
        else:
            n = await ops.raw_pull(t.base, REPO_BLOBS, t.blob_digest, k)
        dt = time.perf_counter() - t0
        if n != self.cfg.blob_bytes * k:
            raise ops.BenchError(f"short read {n}")
        return {"mbps": n / dt / MB, "wall_s": dt}

    def _loop(self, t: Target, path: str, method: str, conns: int, accept: str | None) -> dict:
        headers = {**t.headers, **({"Accept": accept} if accept else {})}
        res = wrkload.run_loop(
            self.cfg.wrk_ok,
            url=t.base + path,
            method=method,
            headers=headers,
            connections=conns,
            seconds=self.cfg.loop_seconds,
            max_requests=self.cfg.max_requests,
        )
        if res.errors or not res.requests:
            raise ops.BenchError(f"{res.errors} errors in {res.requests} requests ({res.tool})")
        return {
            "rps": res.rps,
            "p50_ms": res.p50_ms,
            "p99_ms": res.p99_ms,
            "requests": res.requests,
            "wall_s": res.seconds,
            "client_cpu_s": res.client_cpu_s,
            "tool": res.tool,
        }

    def manifest_loop(self, op: str, conns: int):
        async def fn(t: Target) -> dict:
            if op == "get":
                return self._loop(
                    t, f"/v2/{REPO_IMAGE}/manifests/latest", "GET", conns, ops.OCI_MANIFEST
                )
            return self._loop(
                t,
                f"/v2/{REPO_IMAGE}/manifests/{t.manifest_digest}",
                "HEAD",
                conns,
                ops.OCI_MANIFEST,
            )

        return fn

    def tags_loop(self, conns: int):
        async def fn(t: Target) -> dict:
            return self._loop(t, f"/v2/{REPO_TAGS}/tags/list", "GET", conns, None)

        return fn

    async def m_tags_walk(self, t: Target) -> dict:
        cfg = self.cfg
        d, cpu = wrkload.run_walk(
            f"{t.base}/v2/{REPO_TAGS}/tags/list",
            n=cfg.page_n,
            expect=cfg.tags + 1,
            seconds=cfg.walk_seconds,
            max_walks=10_000,
        )
        if d["error"]:
            raise ops.BenchError(d["error"])
        walks, pages, dt = d["walks"], d["pages"], d["seconds"]
        note = f"{t.name}: tags/list ?n={cfg.page_n} " + (
            f"paginated ({pages // max(walks, 1)} pages per walk)"
            if d["paginated"]
            else "ignored n (whole list in one response)"
        )
        if note not in self.notes:
            self.notes.append(note)
        return {
            "walks_per_s": walks / dt,
            "rps": pages / dt,
            "pages_per_walk": pages / max(walks, 1),
            "paginated": d["paginated"],
            "wall_s": dt,
            "client_cpu_s": cpu,
        }

    # --- driver -----------------------------------------------------------------------

    def plan(self) -> list[tuple]:
        return [
            ("push_mono", self.m_push_mono, self.prep_push),
            ("push_chunked", self.m_push_chunked, self.prep_push),
            ("pull_1", self.m_pull_1, self.prep_pull),
            ("pull_n", self.m_pull_n, self.prep_pull),
            ("manifest_get_c1", self.manifest_loop("get", 1)),
            ("manifest_get_c32", self.manifest_loop("get", 32)),
            ("manifest_head_c1", self.manifest_loop("head", 1)),
            ("manifest_head_c32", self.manifest_loop("head", 32)),
            ("tags_full_c1", self.tags_loop(1)),
            ("tags_full_c8", self.tags_loop(8)),
            ("tags_walk", self.m_tags_walk),
            ("tiny_push", self.m_tiny_push),
            ("catalog_c1", self.catalog_loop(1)),
            ("catalog_c8", self.catalog_loop(8)),
        ]

    def auth_plan(self) -> list[tuple]:
        """The small-request workloads of AUTH_KEYS (memory is sampled in the c=32 loops)."""
        plan = {key: fn for key, fn, *_prep in self.plan()}
        return [(k, plan[k]) for k in AUTH_KEYS if k in plan]

    async def measure_limits(self, run: int) -> None:
        """The machine's limits, once per run, before the registries are measured."""
        cfg, files = self.cfg, self.files
        per = self.results.setdefault(MACHINE, {})

        def put(key: str, **values: float) -> None:
            per.setdefault(key, []).append({"run": run, **values})

        put("limit_sha256", mbps=limits.sha256_rate(self.data, cfg.hash_seconds))
        put("limit_fsync", mbps=limits.fsync_write_rate(self.data, self.workdir))
        if files is not None:
            for mode, name in (("sendfile", "sendfile"), ("read/write", "readwrite")):
                if mode not in files.ports:
                    continue
                for clients, label in ((1, "1"), (cfg.pull_clients, "n")):
                    t0 = time.perf_counter()
                    got = await ops.raw_get(files.base(mode), f"/{files.blob_name}", clients)
                    dt = time.perf_counter() - t0
                    if got != cfg.blob_bytes * clients:
                        raise ops.BenchError(f"{files.tool} {mode}: {got} bytes")
                    put(f"limit_loopback_{label}_{name}", mbps=got / dt / MB)
            for conns in (1, 32):
                res = wrkload.run_loop(
                    cfg.wrk_ok,
                    url=files.base("sendfile") + "/" + limits.TINY_FILE,
                    method="GET",
                    headers={},
                    connections=conns,
                    seconds=cfg.loop_seconds,
                    max_requests=cfg.max_requests,
                )
                put(f"limit_tiny_c{conns}", rps=res.rps, p50_ms=res.p50_ms, p99_ms=res.p99_ms)
        shown = {k: round(v[-1].get("mbps") or v[-1].get("rps") or 0, 1) for k, v in per.items()}
        log(f"  run {run} machine limits {shown}")

    async def run(self) -> None:
        for t in self.targets:
            try:
                await self.setup(t)
            except Exception as e:
                log(f"  setup {t.name} FAILED: {type(e).__name__}: {e}")
                self.notes.append(f"{t.name}: setup failed: {type(e).__name__}: {e}"[:400])
        if self.cfg.limits:
            self.files = limits.FileServer(self.workdir / "limits")
            try:
                self.files.start(self.data)
            except Exception as e:
                self.notes.append(f"loopback limit not measured: {type(e).__name__}: {e}"[:400])
                self.files = None
        try:
            for run in range(1, self.cfg.runs + 1):
                log(f"run {run}/{self.cfg.runs}")
                if self.cfg.limits:
                    try:
                        await self.measure_limits(run)
                    except Exception as e:
                        self.notes.append(f"run {run}: machine limits: {type(e).__name__}: {e}")
                for key, fn, *prep in self.plan():
                    for t in self.targets:
                        await self.measure(key, t, fn, run, *prep)
                        # the request loops block without yielding to the event loop;
                        # yield here so Ctrl-C (asyncio.run cancels this task) stops the
                        # run between measurements instead of at its end
                        await asyncio.sleep(0)
        finally:
            for t in self.targets:
                if t.client is not None:
                    await t.client.aclose()
            if self.files is not None:
                self.files.stop()

    async def run_auth(self, auth_targets: list[Target]) -> None:
        """The AUTH_KEYS workloads against the servers restarted with token auth on."""
        ready = []
        for t in auth_targets:
            try:
                await self.setup_auth(t)
                ready.append(t)
            except Exception as e:
                log(f"  setup {t.name} (token auth) FAILED: {type(e).__name__}: {e}")
                self.notes.append(f"{t.name}: token auth setup failed: {type(e).__name__}: {e}")
        # CPU accounting counts the servers running now
        self.targets = [*auth_targets, *(t for t in self.targets if t.server.alive())]
        try:
            for run in range(1, self.cfg.runs + 1):
                log(f"token auth run {run}/{self.cfg.runs}")
                for key, fn in self.auth_plan():
                    for t in ready:
                        await self.measure(key + goals.AUTH_SUFFIX, t, fn, run, self.prep_auth)
                        await asyncio.sleep(0)
        finally:
            for t in auth_targets:
                if t.client is not None:
                    await t.client.aclose()

    def run_gc(self, python: str) -> None:
        """bench/gc_bench.py's collection over cfg.gc_blobs blobs, cfg.gc_runs times."""
        import gc_bench

        for run in range(1, self.cfg.gc_runs + 1):
            workdir = Path(tempfile.mkdtemp(prefix="gc-", dir=self.workdir))
            try:
                res = gc_bench.run_once(workdir, self.cfg.gc_blobs, python)
            except Exception as e:
                self.notes.append(f"gc run {run} failed: {type(e).__name__}: {e}"[:400])
                continue
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            for name in (CARGOHOLD, DISTRIBUTION):
                if name in self.results:
                    self.results[name].setdefault("gc", []).append({"run": run, **res[name]})
            log(f"  gc run {run}: {res}")

    def derive_rss(self) -> None:
        """rss_c32[_auth]: per run, the peak over the c=32 loops of each server."""
        for name, per in self.results.items():
            if name == MACHINE:
                continue
            for suffix in ("", goals.AUTH_SUFFIX):
                by_run: dict[int, dict] = {}
                for key in RSS_LOOPS:
                    for r in per.get(key + suffix, []):
                        if not r.get("rss_samples"):
                            continue
                        d = by_run.setdefault(
                            r["run"],
                            {"run": r["run"], "process_mb": 0.0, "total_mb": 0.0, "processes": 0},
                        )
                        d["process_mb"] = max(d["process_mb"], r["rss_peak_process_mb"])
                        d["total_mb"] = max(d["total_mb"], r["rss_peak_total_mb"])
                        d["processes"] = max(d["processes"], r["rss_processes"])
                        for kind, mb in r.get("rss_peak_by_role_mb", {}).items():
                            roles = d.setdefault("by_role_mb", {})
                            roles[kind] = max(roles.get(kind, 0.0), mb)
                        if r.get("hwm_process_mb") is not None:
                            d["hwm_process_mb"] = max(
                                d.get("hwm_process_mb", 0.0), r["hwm_process_mb"]
                            )
                if by_run:
                    per["rss_c32" + suffix] = list(by_run.values())


def print_table(summary: list[dict], notes: list[str]) -> None:
    print("")
    print(report.render_text(report.table(summary)))
    legend = report.ratio_legend(summary)
    if legend:
        print(legend)
    for line in report.verdict_lines(summary):
        if line:
            print(line)
    for n in notes:
        print(f"note: {n}")


def rerender(path: Path) -> int:
    """Rebuild table, .md and .json of an earlier run from its .json (no measuring)."""
    import json

    d = json.loads(path.read_text())
    c = d["config"]
    summary = build_summary(d["runs"], c)
    print_table(summary, [d["machine"]["note"], *d["notes"]])
    mpath, jpath = report.write_outputs(
        path.parent, d["timestamp"], d["machine"], c, summary, d["runs"], d["notes"]
    )
    log(f"wrote {mpath} and {jpath}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark cargohold against CNCF Distribution on loopback.",
        formatter_class=argparse.RawTextHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="smaller blobs, fewer tags, shorter loops")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="checks that everything runs, in well under a minute: tiny sizes, 1 run,\n"
        "0.3 s loops (figures meaningless)",
    )
    p.add_argument("--no-auth", action="store_true", help="skip the token auth phase")
    p.add_argument("--no-gc", action="store_true", help="skip garbage collection")
    p.add_argument("--no-limits", action="store_true", help="skip the machine limits")
    p.add_argument("--images", type=int, help="small images pushed per run (default 200)")
    p.add_argument("--repos", type=int, help="repositories for the catalog (default 2,000)")
    p.add_argument("--gc-blobs", type=int, help="blobs for the GC measurement (default 10,000)")
    p.add_argument("--gc-runs", type=int, help="GC repetitions (default: --runs)")
    p.add_argument("--runs", type=int, help="interleaved repetitions (default 3, quick 2)")
    p.add_argument(
        "--only",
        type=parse_only,
        metavar="SERVERS",
        help="measure only these, comma-separated: cargohold (embedded), scaleout,\n"
        "distribution; 'both' = cargohold,distribution (the default), 'all' = all three",
    )
    p.add_argument(
        "--scaleout",
        action="store_true",
        help="also measure cargohold scale-out (PostgreSQL + S3 via moto + Redis)",
    )
    p.add_argument(
        "--postgres-url",
        default=os.environ.get("CARGOHOLD_BENCH_POSTGRES_URL", scaleout_defaults()[0]),
        help="scale-out: admin URL of a loopback PostgreSQL (a scratch database is made)",
    )
    p.add_argument(
        "--redis-url",
        default=os.environ.get("CARGOHOLD_BENCH_REDIS_URL", scaleout_defaults()[1]),
        help="scale-out: loopback Redis URL (a unique key prefix is used)",
    )
    p.add_argument("--cargohold-python", default=str(VENV_PY), help="python that has cargohold")
    p.add_argument(
        "--cargohold-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `cargohold serve` (repeatable)",
    )
    p.add_argument("--no-wrk", action="store_true", help="use the httpx loop instead of wrk")
    p.add_argument(
        "--pull-httpx",
        action="store_true",
        help="pull blobs with httpx instead of the raw-socket byte counter",
    )
    p.add_argument("--blob-mib", type=int, help="override blob size")
    p.add_argument("--tags", type=int, help="override number of tags")
    p.add_argument("--seconds", type=float, help="override seconds per request loop")
    p.add_argument("--out", default=str(BENCH / "results"), help="results directory")
    p.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    p.add_argument(
        "--rerender",
        metavar="JSON",
        help="only rebuild the table/.md/.json of an earlier run from its .json",
    )
    return p.parse_args(argv)


ONLY_ALIASES = {
    "cargohold": (CARGOHOLD,),
    "embedded": (CARGOHOLD,),
    "scaleout": (SCALEOUT,),
    "cargohold-scaleout": (SCALEOUT,),
    "distribution": (DISTRIBUTION,),
    "both": (CARGOHOLD, DISTRIBUTION),
    "all": (CARGOHOLD, SCALEOUT, DISTRIBUTION),
}


def parse_only(value: str) -> frozenset[str]:
    chosen: set[str] = set()
    for word in value.replace(" ", "").split(","):
        if word not in ONLY_ALIASES:
            raise argparse.ArgumentTypeError(
                f"unknown server {word!r} (choose from {', '.join(ONLY_ALIASES)})"
            )
        chosen.update(ONLY_ALIASES[word])
    return frozenset(chosen)


def scaleout_defaults() -> tuple[str, str]:
    import scaleout

    return scaleout.DEFAULT_POSTGRES_URL, scaleout.DEFAULT_REDIS_URL


def selected_targets(a: argparse.Namespace) -> list[str]:
    """--only (default cargohold + distribution), plus scale-out with --scaleout."""
    chosen = set(a.only or (CARGOHOLD, DISTRIBUTION))
    if a.scaleout:
        chosen.add(SCALEOUT)
    return [t for t in report.TARGETS if t in chosen]


def make_config(a: argparse.Namespace) -> Config:
    q, smoke = a.quick, a.smoke

    def pick(given, full, quick, tiny):
        return given if given is not None else tiny if smoke else quick if q else full

    runs = pick(a.runs, 3, 2, 1)
    seconds = pick(a.seconds, 5.0, 2.0, 0.3)
    return Config(
        runs=runs,
        blob_bytes=pick(a.blob_mib, 256, 64, 4) * ops.MiB,
        chunk_bytes=(1 if smoke else 16) * ops.MiB,
        pull_clients=8,
        tags=pick(a.tags, 5000, 500, 20),
        tag_concurrency=16,
        page_n=pick(None, 100, 100, 10),
        loop_seconds=seconds,
        max_requests=200_000,
        walk_seconds=seconds,
        use_wrk=not a.no_wrk,
        pull_httpx=a.pull_httpx,
        tiny_images=pick(a.images, 200, 200, 8),
        catalog_repos=pick(a.repos, 2000, 2000, 20),
        gc_blobs=pick(a.gc_blobs, 10_000, 2_000, 100),
        gc_runs=0 if a.no_gc else (a.gc_runs if a.gc_runs is not None else runs),
        auth=not a.no_auth,
        limits=not a.no_limits,
        hash_seconds=0.2 if smoke else 1.0,
        smoke=smoke,
        order=tuple(selected_targets(a)),
    )


def rss_notes(results: dict) -> list[str]:
    """Which kind of process the peak RSS rows come from (the target is per worker)."""
    out = []
    for name, per in results.items():
        for key in ("rss_c32", "rss_c32" + goals.AUTH_SUFFIX):
            roles: dict[str, float] = {}
            for r in per.get(key, []):
                for kind, mb in r.get("by_role_mb", {}).items():
                    roles[kind] = max(roles.get(kind, 0.0), mb)
            if roles:
                parts = ", ".join(f"{k} {v:.0f} MB" for k, v in sorted(roles.items()))
                out.append(f"{name} {key}: largest peak RSS per kind of process: {parts}")
    return out


def tokenauth_server(work: Path):
    import tokenauth

    server = tokenauth.TokenServer(work)
    server.start()
    return server


def auth_scopes(cfg: Config) -> list[str]:
    """What the auth-phase clients ask for: pull on the read repositories, push on the
    small-image repositories, and the catalog."""
    return [
        f"repository:{REPO_IMAGE}:pull",
        f"repository:{REPO_TAGS}:pull",
        *(f"repository:{REPO_SMALL.format(k=k)}:pull,push" for k in range(cfg.tiny_clients)),
        "registry:catalog:*",
    ]


def restart_with_auth(
    targets: list[Target], work: Path, a: argparse.Namespace, token_server, cfg: Config
) -> list[Target]:
    """Stop cargohold and Distribution; the returned targets, to be started by the caller,
    serve the same data with token auth on and carry over what setup learned (digests,
    catalog size)."""
    import tokenauth

    out = []
    for t in targets:
        if t.name == CARGOHOLD:
            srv = servers.cargohold_server(
                work, a.cargohold_python, a.cargohold_arg, extra_env=tokenauth.cargohold_auth_env()
            )
            srv.log_path = work / "cargohold-auth.log"
        elif t.name == DISTRIBUTION:
            auth = tokenauth.distribution_auth_yaml(token_server.realm, token_server.cert_path)
            srv = servers.distribution_server(work, auth, label="-auth")
        else:
            continue
        t.server.stop()
        t.state["restarted"] = True
        out.append(
            Target(
                t.name,
                srv,
                blob_digest=t.blob_digest,
                manifest_digest=t.manifest_digest,
                state={"catalog_n": t.state.get("catalog_n")},
                scopes=auth_scopes(cfg),
            )
        )
    return out


def _sigterm(signum, frame) -> None:
    # run the finally blocks (servers, moto, scratch database, temp dir) on kill/timeout
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.rerender:
        return rerender(Path(a.rerender))
    cfg = make_config(a)
    wanted = list(cfg.order)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    notes: list[str] = []
    signal.signal(signal.SIGTERM, _sigterm)
    # data on the same disk as /var/tmp (not tmpfs) for all servers
    work = Path(tempfile.mkdtemp(prefix="cargohold-bench-", dir="/var/tmp"))
    targets: list[Target] = []
    auth_servers: list[servers.Server] = []  # the same registries restarted with token auth
    token_server = None  # tokenauth.TokenServer: the issuer Distribution trusts
    stack = None  # scaleout.ScaleoutStack when the scale-out server is measured
    try:
        if CARGOHOLD in wanted or SCALEOUT in wanted:
            ok, msg = servers.cargohold_available(a.cargohold_python, REPO)
            if not ok:
                log(f"cargohold is not runnable: {msg}")
                notes.append(f"cargohold not runnable: {msg}")
                wanted = [t for t in wanted if t not in (CARGOHOLD, SCALEOUT)]
        if CARGOHOLD in wanted:
            srv = servers.cargohold_server(work, a.cargohold_python, a.cargohold_arg)
            targets.append(Target(CARGOHOLD, srv))
        if SCALEOUT in wanted:
            import scaleout

            log("starting the scale-out stack: scratch PostgreSQL database, moto S3, Redis")
            try:
                stack = scaleout.ScaleoutStack(
                    work, a.cargohold_python, a.postgres_url, a.redis_url
                )
                env = stack.start()
            except Exception as e:
                msg = f"{type(e).__name__}: {e}"[:600]
                log(f"scale-out stack failed: {msg}")
                notes.append(f"cargohold-scaleout not measured: {msg}")
                wanted.remove(SCALEOUT)
            else:
                srv = servers.cargohold_server(
                    work, a.cargohold_python, a.cargohold_arg, name=SCALEOUT, extra_env=env
                )
                srv.cpu_label = "cargohold"  # its own processes, next to moto, postgres...
                srv.extra_cpu.update(stack.cpu_trackers())
                targets.append(Target(SCALEOUT, srv))
                notes.append(
                    "cargohold-scaleout: PostgreSQL + S3 + Redis. Its S3 is moto, a Python "
                    "S3 emulator running as one local process, far slower than MinIO or AWS "
                    "S3: the scale-out blob push/pull figures measure moto more than "
                    "cargohold. Manifest and tags figures do not touch S3 (manifests and tags "
                    "live in the database; manifest reads may be answered from cargohold's "
                    "Redis cache) and are meaningful. moto's CPU, the PostgreSQL backends' "
                    "and redis-server's count as the scale-out server's CPU."
                )
        if DISTRIBUTION in wanted:
            if not Path(servers.DIST_BIN).exists():
                log(f"{servers.DIST_BIN} missing (apt-get install docker-registry)")
                return 2
            targets.append(Target(DISTRIBUTION, servers.distribution_server(work)))
        if not targets:
            log("nothing left to measure")
            return 2
        cfg.order = tuple(t.name for t in targets)
        if not wrkload.WRK and cfg.use_wrk:
            notes.append("wrk not installed: request loops used the httpx fallback")
        meta = report.machine_info(REPO, a.cargohold_python, work, servers.DIST_BIN)
        if stack is not None and SCALEOUT in cfg.order:
            meta.update(stack.describe())
        meta["loadavg_start"] = os.getloadavg()
        log(
            f"machine: {meta['cpu_model']}, {meta['cores']} cores, {meta['memory_gib']} GiB, "
            f"kernel {meta['kernel']}; {meta['distribution_version']}"
        )
        log(f"note: {meta['note']}")
        servers.start_all([t.server for t in targets])
        for t in targets:
            log(f"started {t.name} at {t.base} (pid {t.server.proc.pid})")
        bench = Bench(cfg, targets, work)
        asyncio.run(bench.run())
        if bench.files is not None:
            cfg.loopback_server = bench.files.tool
        if cfg.auth and {CARGOHOLD, DISTRIBUTION} <= set(cfg.order):
            log("restarting cargohold and distribution with token auth on (same data)")
            token_server = tokenauth_server(work)
            auth_targets = restart_with_auth(targets, work, a, token_server, cfg)
            auth_servers.extend(t.server for t in auth_targets)  # stopped in `finally`
            servers.start_all(auth_servers)
            for t in auth_targets:
                log(f"started {t.name} with token auth at {t.base} (pid {t.server.proc.pid})")
            asyncio.run(bench.run_auth(auth_targets))
            for srv in auth_servers:
                if not srv.alive():
                    notes.append(f"{srv.name} (token auth) exited:\n{srv.log_tail(10)}")
                srv.stop()
            notes.append(
                f"token auth: the bench's token server issued {token_server.issued} tokens "
                "for distribution (Distribution 2.8 only verifies tokens); cargohold issued "
                "its own"
            )
        elif cfg.auth:
            notes.append("token auth phase skipped: it needs cargohold and distribution")
        if cfg.gc_runs and {CARGOHOLD, DISTRIBUTION} <= set(cfg.order):
            log(f"garbage collection over {cfg.gc_blobs} blobs, {cfg.gc_runs} runs")
            bench.run_gc(a.cargohold_python)
        bench.derive_rss()
        notes += bench.notes
        notes += rss_notes(bench.results)
        shares = [
            r["foreign_cpu_share"]
            for per in bench.results.values()
            for runs in per.values()
            for r in runs
            if r.get("foreign_cpu_share") is not None
        ]
        if shares:
            busy = sum(1 for x in shares if x > 0.10)
            notes.append(
                f"other load on the machine: median {report.median(shares):.0%}, max "
                f"{max(shares):.0%} of total CPU during measurements; {busy} of {len(shares)} "
                "measurements had > 10% (noisy if many)"
            )
        for t in targets:
            for part, tracker in t.server.extra_cpu.items():
                if getattr(tracker, "seen", 1) == 0:
                    notes.append(
                        f"{t.name}: no {part} process was visible in /proc, so its CPU is "
                        "missing from the server CPU"
                    )
        meta["loadavg_end"] = os.getloadavg()
        for t in targets:
            if not t.server.alive() and not t.state.get("restarted"):
                notes.append(f"{t.name} exited during the run:\n{t.server.log_tail(10)}")
        summary = build_summary(bench.results, cfg.describe())
        print_table(summary, [meta["note"], *notes])
        mpath, jpath = report.write_outputs(
            Path(a.out), stamp, meta, cfg.describe(), summary, bench.results, notes
        )
        log(f"wrote {mpath} and {jpath}")
        return 0
    finally:
        # a second Ctrl-C / SIGTERM must not cut the cleanup short
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for t in targets:
            t.server.stop()
        for srv in auth_servers:
            srv.stop()
        if token_server is not None:
            token_server.stop()
        if stack is not None:
            stack.close()
            for n in stack.cleanup_notes:
                log(f"cleanup: {n}")
        if a.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())
