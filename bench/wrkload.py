"""Request loops, each in a separate load-generator process.

GET loops use wrk (Debian package); HEAD loops (which wrk cannot do) and everything when wrk
is missing use a minimal raw asyncio HTTP/1.1 client run as a child process.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

WRK = shutil.which("wrk")

LUA = """
wrk.method = "{method}"
{headers}
local max_requests = {max_requests}
local count = 0
local req = nil
request = function()
  count = count + 1
  if count > max_requests then wrk.thread:stop() end
  if req == nil then req = wrk.format() end
  return req
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"mean_us":%.1f,"max_us":%d,"err_connect":%d,"err_read":%d,' ..
    '"err_write":%d,"err_status":%d,"err_timeout":%d}}\\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass
class LoopResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    client_cpu_s: float
    tool: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_wrk(
    url: str,
    method: str,
    headers: dict[str, str],
    connections: int,
    seconds: float,
    max_requests: int,
) -> LoopResult:
    assert url.startswith("http://127.0.0.1:"), url  # loopback only
    hdr = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script = LUA.format(method=method, headers=hdr, max_requests=max_requests)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        cpu0 = children_cpu()
        r = subprocess.run(
            [
                WRK or "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                path,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
        cpu = children_cpu() - cpu0
    finally:
        os.unlink(path)
    line = next((x for x in r.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if r.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({r.returncode}): {r.stdout[-500:]} {r.stderr[-500:]}")
    d = json.loads(line[len("WRKJSON ") :])
    errors = sum(d[k] for k in d if k.startswith("err_"))
    return LoopResult(
        requests=d["requests"],
        seconds=d["duration_us"] / 1e6,
        p50_ms=d["p50_us"] / 1000,
        p99_ms=d["p99_us"] / 1000,
        errors=errors,
        client_cpu_s=cpu,
        tool="wrk",
    )


# --- raw asyncio loop in a child process ----------------------------------------------
# wrk cannot do HEAD (its parser waits for the Content-Length body), so HEAD loops, and
# all loops when wrk is missing, use this minimal keep-alive HTTP/1.1 client: one prebuilt
# request per connection in flight, response framing by Content-Length only.


class _Conn(asyncio.Protocol):
    def __init__(self, spec: dict, request: bytes, shared: dict, done: asyncio.Future):
        self.spec, self.request, self.shared, self.done = spec, request, shared, done
        self.head = spec["method"] == "HEAD"
        self.buf = bytearray()
        self.need = -1
        self.t0 = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        sh = self.shared
        if time.perf_counter() >= sh["deadline"] or sh["issued"] >= self.spec["max_requests"]:
            self.transport.close()
            return
        sh["issued"] += 1
        self.buf.clear()
        self.need = -1
        self.t0 = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            self.status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line[15:])
                elif line.startswith(b"transfer-encoding:") and not self.head:
                    self.shared["errors"] += 1  # chunked bodies are not supported here
                    self.transport.close()
                    return
            self.need = end + 4 + (0 if self.head else length)
        if len(self.buf) >= self.need:
            self.shared["lat"].append(time.perf_counter() - self.t0)
            if self.status >= 400:
                self.shared["errors"] += 1
            self._send()

    def connection_lost(self, exc) -> None:
        if (self.need >= 0 and len(self.buf) < self.need) or (self.need < 0 and self.buf):
            self.shared["errors"] += 1
        if not self.done.done():
            self.done.set_result(None)


async def _raw_loop(spec: dict) -> dict:
    from urllib.parse import urlsplit

    u = urlsplit(spec["url"])
    path = u.path + (f"?{u.query}" if u.query else "")
    hdrs = "".join(f"{k}: {v}\r\n" for k, v in spec["headers"].items())
    request = (
        f"{spec['method']} {path} HTTP/1.1\r\nHost: {u.netloc}\r\n{hdrs}"
        "User-Agent: cargohold-bench\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    shared = {"lat": [], "errors": 0, "issued": 0, "deadline": 0.0}
    conns = []
    for _ in range(spec["connections"]):
        done = loop.create_future()
        conns.append((done, lambda d=done: _Conn(spec, request, shared, d)))
    t0 = time.perf_counter()
    shared["deadline"] = t0 + spec["seconds"]
    for _done, factory in conns:
        await loop.create_connection(factory, u.hostname, u.port)
    await asyncio.gather(*(d for d, _ in conns))
    elapsed = time.perf_counter() - t0
    lat = sorted(shared["lat"])

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000 if lat else 0.0

    return {
        "requests": len(lat),
        "seconds": elapsed,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "errors": shared["errors"],
    }


def run_raw_loop(
    url: str,
    method: str,
    headers: dict[str, str],
    connections: int,
    seconds: float,
    max_requests: int,
) -> LoopResult:
    assert url.startswith("http://127.0.0.1:"), url  # loopback only
    spec = dict(
        url=url,
        method=method,
        headers=headers,
        connections=connections,
        seconds=seconds,
        max_requests=max_requests,
    )
    cpu0 = children_cpu()
    r = subprocess.run(
        [sys.executable, __file__, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    cpu = children_cpu() - cpu0
    if r.returncode != 0:
        raise RuntimeError(f"raw loop failed: {r.stderr[-800:]}")
    d = json.loads(r.stdout.strip().splitlines()[-1])
    return LoopResult(client_cpu_s=cpu, tool="asyncio-raw", **d)


def run_loop(use_wrk: bool, **kw) -> LoopResult:
    if use_wrk and WRK and kw["method"] != "HEAD":
        return run_wrk(**kw)
    return run_raw_loop(**kw)


# --- tags/list pagination walk (http.client, keep-alive, in a child process) -------------


def _walk(spec: dict) -> dict:
    import http.client
    import re
    from urllib.parse import urlsplit

    link_re = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
    u = urlsplit(spec["url"])
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    n, expect, max_pages = spec["n"], spec["expect"], spec["max_pages"]
    walks = pages = errors = 0
    paginated = True
    error = ""
    t0 = time.perf_counter()
    deadline = t0 + spec["seconds"]
    while time.perf_counter() < deadline and walks < spec["max_walks"] and not error:
        path = f"{u.path}?n={n}"
        seen = p = 0
        while path:
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            p += 1
            if r.status != 200:
                error = f"HTTP {r.status} for {path}"
                break
            tags = json.loads(body).get("tags") or []
            paginated = paginated and len(tags) <= n
            seen += len(tags)
            m = link_re.search(r.getheader("Link") or "")
            path = ""
            if m:
                nxt = urlsplit(m.group(1))
                if nxt.hostname not in (None, "127.0.0.1"):
                    error = f"Link points off loopback: {m.group(1)}"
                    break
                path = nxt.path + (f"?{nxt.query}" if nxt.query else "")
            if p > max_pages:
                error = f"walk did not end after {max_pages} pages"
                break
        pages += p
        if not error and seen != expect:
            error = f"walk saw {seen} tags, want {expect}"
        walks += 1
    elapsed = time.perf_counter() - t0
    conn.close()
    return {
        "walks": walks,
        "pages": pages,
        "seconds": elapsed,
        "paginated": paginated,
        "error": error,
        "errors": errors,
    }


def run_walk(url: str, n: int, expect: int, seconds: float, max_walks: int) -> tuple[dict, float]:
    """Repeatedly walk url?n=N following Link rel=next; returns (stats, client CPU s)."""
    assert url.startswith("http://127.0.0.1:"), url  # loopback only
    spec = dict(
        mode="walk",
        url=url,
        n=n,
        expect=expect,
        seconds=seconds,
        max_walks=max_walks,
        max_pages=expect // n + 10,
    )
    cpu0 = children_cpu()
    r = subprocess.run(
        [sys.executable, __file__, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    cpu = children_cpu() - cpu0
    if r.returncode != 0:
        raise RuntimeError(f"walk failed: {r.stderr[-800:]}")
    return json.loads(r.stdout.strip().splitlines()[-1]), cpu


def _main() -> None:
    spec = json.loads(sys.argv[1])
    if spec.get("mode") == "walk":
        print(json.dumps(_walk(spec)))
        return
    try:
        import uvloop  # optional: lighter event loop when cargohold's deps are installed

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(_raw_loop(spec))))


if __name__ == "__main__":
    _main()
