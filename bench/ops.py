"""OCI Distribution client operations used by the benchmark (httpx + asyncio)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import time
from collections.abc import AsyncIterator
from urllib.parse import urljoin, urlsplit

import httpx

MiB = 1024 * 1024
PIECE = MiB  # request bodies are streamed from memory in 1 MiB pieces
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class BenchError(RuntimeError):
    pass


def sha256_digest(data: bytes | bytearray | memoryview) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def new_client(base: str, connections: int = 64) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base,
        http1=True,
        http2=False,
        timeout=httpx.Timeout(120.0),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        follow_redirects=True,
        trust_env=False,
    )


async def _pieces(view: memoryview) -> AsyncIterator[memoryview]:
    for off in range(0, len(view), PIECE):
        yield view[off : off + PIECE]


def _expect(r: httpx.Response, codes: tuple[int, ...], what: str) -> None:
    if r.status_code not in codes:
        try:
            body = r.text[:300]
        except httpx.ResponseNotRead:
            body = ""
        raise BenchError(f"{what}: HTTP {r.status_code} (want {codes}) {body}")


def _with_query(location: str, key: str, value: str) -> str:
    sep = "&" if "?" in location else "?"
    return f"{location}{sep}{key}={value}"


async def _start_upload(client: httpx.AsyncClient, repo: str) -> str:
    r = await client.post(f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
    _expect(r, (202,), "POST upload")
    loc = r.headers.get("location")
    if not loc:
        raise BenchError("POST upload: no Location header")
    return urljoin(str(client.base_url), loc)


async def push_monolithic(
    client: httpx.AsyncClient, repo: str, data: memoryview, digest: str
) -> None:
    """POST to open an upload, then PUT ?digest= with the whole body."""
    loc = await _start_upload(client, repo)
    r = await client.put(
        _with_query(loc, "digest", digest),
        content=_pieces(data),
        headers={"Content-Length": str(len(data)), "Content-Type": "application/octet-stream"},
    )
    _expect(r, (201,), "PUT monolithic")
    got = r.headers.get("docker-content-digest")
    if got and got != digest:
        raise BenchError(f"PUT monolithic: digest {got} != {digest}")


async def push_chunked(
    client: httpx.AsyncClient, repo: str, data: memoryview, digest: str, chunk: int
) -> None:
    """POST, PATCH in `chunk`-byte pieces with Content-Range, then PUT ?digest=."""
    loc = await _start_upload(client, repo)
    for off in range(0, len(data), chunk):
        part = data[off : off + chunk]
        r = await client.patch(
            loc,
            content=_pieces(part),
            headers={
                "Content-Length": str(len(part)),
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{off}-{off + len(part) - 1}",
            },
        )
        _expect(r, (202,), f"PATCH at {off}")
        loc = urljoin(str(client.base_url), r.headers.get("location") or loc)
    r = await client.put(_with_query(loc, "digest", digest), headers={"Content-Length": "0"})
    _expect(r, (201,), "PUT chunked close")


async def pull_blob(client: httpx.AsyncClient, repo: str, digest: str, verify: bool = False) -> int:
    n = 0
    h = hashlib.sha256() if verify else None
    async with client.stream("GET", f"/v2/{repo}/blobs/{digest}") as r:
        if r.status_code != 200:
            await r.aread()
            _expect(r, (200,), "GET blob")
        async for piece in r.aiter_raw():
            n += len(piece)
            if h is not None:
                h.update(piece)
    if h is not None and "sha256:" + h.hexdigest() != digest:
        raise BenchError("GET blob: content digest mismatch")
    return n


async def pull_concurrent(client: httpx.AsyncClient, repo: str, digest: str, clients: int) -> int:
    sizes = await asyncio.gather(*(pull_blob(client, repo, digest) for _ in range(clients)))
    return sum(sizes)


async def push_small_blob(client: httpx.AsyncClient, repo: str, data: bytes) -> str:
    digest = sha256_digest(data)
    loc = await _start_upload(client, repo)
    r = await client.put(
        _with_query(loc, "digest", digest),
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    _expect(r, (201,), "PUT small blob")
    return digest


async def push_image(client: httpx.AsyncClient, repo: str, tag: str) -> tuple[bytes, str]:
    """Push a config blob, a layer blob and an OCI manifest tagged `tag`."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {},
        }
    ).encode()
    layer = hashlib.sha256(b"cargohold-bench-layer").digest() * 128  # 4 KiB
    cfg_digest = await push_small_blob(client, repo, config)
    layer_digest = await push_small_blob(client, repo, layer)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": cfg_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": len(layer)}],
            "annotations": {"org.opencontainers.image.title": "cargohold-bench"},
        },
        separators=(",", ":"),
    ).encode()
    digest = await put_manifest(client, repo, tag, manifest)
    return manifest, digest


async def put_manifest(client: httpx.AsyncClient, repo: str, ref: str, manifest: bytes) -> str:
    r = await client.put(
        f"/v2/{repo}/manifests/{ref}",
        content=manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    _expect(r, (201,), f"PUT manifest {ref}")
    digest = sha256_digest(manifest)
    got = r.headers.get("docker-content-digest")
    if got and got != digest:
        raise BenchError(f"PUT manifest: digest {got} != {digest}")
    return digest


async def push_tags(
    client: httpx.AsyncClient, repo: str, manifest: bytes, count: int, concurrency: int
) -> float:
    """Tag one manifest `count` times with `concurrency` parallel PUTs; returns seconds."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(tag_name(i))

    async def worker() -> None:
        while True:
            try:
                tag = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await put_manifest(client, repo, tag, manifest)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0


def tag_name(i: int) -> str:
    return f"t{i:05d}"


async def get_manifest(client: httpx.AsyncClient, repo: str, ref: str, method: str) -> int:
    r = await client.request(
        method, f"/v2/{repo}/manifests/{ref}", headers={"Accept": OCI_MANIFEST}
    )
    _expect(r, (200,), f"{method} manifest {ref}")
    return r.status_code


async def list_tags(client: httpx.AsyncClient, repo: str) -> list[str]:
    r = await client.get(f"/v2/{repo}/tags/list")
    _expect(r, (200,), "GET tags/list")
    return r.json().get("tags") or []


# --- raw-socket blob pull ------------------------------------------------------------------
# httpx/h11 costs about one client core per ~700 MB/s here, which on a 2-core machine makes
# the load generator the bottleneck for pulls. This reader only counts bytes: recv_into a
# reused 1 MiB buffer, no per-chunk Python objects.


async def _raw_get_count(host: str, port: int, path: str) -> int:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    buf = bytearray(MiB)
    view = memoryview(buf)
    try:
        await loop.sock_connect(sock, (host, port))
        req = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
        await loop.sock_sendall(sock, req.encode())
        head = bytearray()
        while (end := head.find(b"\r\n\r\n")) < 0:
            n = await loop.sock_recv_into(sock, view)
            if not n:
                raise BenchError("GET blob: connection closed in headers")
            head += view[:n]
        lines = bytes(head[:end]).lower().split(b"\r\n")
        status = int(lines[0][9:12])
        if status != 200:
            raise BenchError(f"GET blob (raw): HTTP {status}")
        length = None
        for line in lines[1:]:
            if line.startswith(b"content-length:"):
                length = int(line[15:])
            elif line.startswith(b"transfer-encoding:"):
                raise BenchError("GET blob (raw): chunked response not supported")
        got = len(head) - end - 4
        while length is None or got < length:
            n = await loop.sock_recv_into(sock, view)
            if not n:
                break
            got += n
        if length is not None and got != length:
            raise BenchError(f"GET blob (raw): {got} of {length} bytes")
        return got
    finally:
        sock.close()


async def raw_pull(base: str, repo: str, digest: str, clients: int = 1) -> int:
    return await raw_get(base, f"/v2/{repo}/blobs/{digest}", clients)


async def raw_get(base: str, path: str, clients: int = 1) -> int:
    """`clients` concurrent GETs of `path`, bytes counted (also used against nginx)."""
    u = urlsplit(base)
    assert u.hostname == "127.0.0.1", base  # loopback only
    sizes = await asyncio.gather(
        *(_raw_get_count(u.hostname, u.port, path) for _ in range(clients))
    )
    return sum(sizes)


# --- small image pushes and many repositories ----------------------------------------------


def small_image(seed: str, layers: int, layer_bytes: int) -> tuple[list[bytes], bytes]:
    """`layers` unique small blobs and a unique config, derived from `seed`."""
    blobs = []
    for i in range(layers):
        block = hashlib.sha256(f"{seed}/{i}".encode()).digest()
        blobs.append(block * (layer_bytes // len(block)))
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Labels": {"seed": seed}},
        }
    ).encode()
    return blobs, config


def image_manifest(config: bytes, layers: list[bytes]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": sha256_digest(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": OCI_LAYER, "digest": sha256_digest(b), "size": len(b)} for b in layers
            ],
        },
        separators=(",", ":"),
    ).encode()


async def push_small_images(
    client: httpx.AsyncClient,
    repos: list[str],
    seeds: list[str],
    clients: int,
    layers: int,
    layer_bytes: int,
) -> float:
    """Push one small image per seed (blobs by POST+PUT, config, manifest tagged like the
    seed) with `clients` workers, worker k into repos[k % len(repos)]; returns seconds."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for s in seeds:
        queue.put_nowait(s)

    async def worker(repo: str) -> None:
        while True:
            try:
                seed = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            blobs, config = small_image(seed, layers, layer_bytes)
            for b in (*blobs, config):
                await push_small_blob(client, repo, b)
            await put_manifest(client, repo, seed, image_manifest(config, blobs))

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(repos[k % len(repos)]) for k in range(clients)))
    return time.perf_counter() - t0


async def scan_queue_drained(client: httpx.AsyncClient, timeout: float) -> float | None:
    """Seconds until cargohold's scan queue is empty (from its /metrics), or None for a
    registry without one."""
    t0 = time.perf_counter()
    while True:
        r = await client.get("/metrics")
        if r.status_code != 200 or "cargohold_scan_jobs_queued" not in r.text:
            return None
        pending = 0.0
        for line in r.text.splitlines():
            name, _, value = line.partition(" ")
            if name in ("cargohold_scan_jobs_queued", "cargohold_scan_jobs_running"):
                pending += float(value)
        if pending == 0:
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout:
            raise BenchError(f"cargohold's scan queue still holds {pending:.0f} jobs")
        await asyncio.sleep(0.1)


async def mount_blob(client: httpx.AsyncClient, repo: str, source: str, digest: str) -> None:
    r = await client.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"mount": digest, "from": source},
        headers={"Content-Length": "0"},
    )
    if r.status_code == 202:  # mount refused: the registry opened an upload instead
        raise BenchError(f"mount {digest} from {source} into {repo}: not mounted")
    _expect(r, (201,), f"mount into {repo}")


async def make_repositories(
    client: httpx.AsyncClient,
    source: str,
    manifest: bytes,
    names: list[str],
    concurrency: int,
) -> float:
    """Each name becomes a repository holding `manifest` (its blobs mounted from `source`,
    then the manifest tagged `latest`); returns seconds."""
    doc = json.loads(manifest)
    digests = [doc["config"]["digest"], *(layer["digest"] for layer in doc["layers"])]
    queue: asyncio.Queue[str] = asyncio.Queue()
    for n in names:
        queue.put_nowait(n)

    async def worker() -> None:
        while True:
            try:
                repo = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            for d in digests:
                await mount_blob(client, repo, source, d)
            await put_manifest(client, repo, "latest", manifest)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0


async def list_catalog(client: httpx.AsyncClient, n: int | None) -> tuple[list[str], bool]:
    """(repositories of the first page, whether a next page is announced)."""
    r = await client.get("/v2/_catalog", params={"n": n} if n else None)
    _expect(r, (200,), "GET _catalog")
    return r.json().get("repositories") or [], "next" in (r.headers.get("link") or "")
