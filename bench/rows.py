"""What the table holds: its rows, the machine-limit rows, and the summary built from the
raw results (medians, ratios, limits, targets and verdicts)."""

from __future__ import annotations

import goals
import report

# (key, metric, label, unit, higher_is_better)
ROWS = [
    ("push_mono", "mbps", "blob push {size} monolithic (POST+PUT)", "MB/s", True),
    ("push_chunked", "mbps", "blob push {size} chunked (PATCH 16 MiB)", "MB/s", True),
    ("pull_1", "mbps", "blob pull {size}, 1 client", "MB/s", True),
    ("pull_n", "mbps", "blob pull {size}, 8 clients (aggregate)", "MB/s", True),
]
for _op, _name in (("get", "manifest GET by tag"), ("head", "manifest HEAD by digest")):
    for _c in (1, 32):
        _k = f"manifest_{_op}_c{_c}"
        ROWS += [
            (_k, "rps", f"{_name}, c={_c}", "req/s", True),
            (_k, "p50_ms", f"{_name}, c={_c} p50", "ms", False),
            (_k, "p99_ms", f"{_name}, c={_c} p99", "ms", False),
        ]
ROWS += [
    ("tiny_push", "images_per_s", "small image push ({images}, 8 clients)", "images/s", True),
    (
        "tiny_push",
        "scanned_per_s",
        "small image push, then its scans drained (cargohold scans every image)",
        "images/s",
        True,
    ),
    ("tags_full_c1", "rps", "tags/list full ({tags} tags), c=1", "req/s", True),
    ("tags_full_c1", "p99_ms", "tags/list full ({tags} tags), c=1 p99", "ms", False),
    ("tags_full_c8", "rps", "tags/list full ({tags} tags), c=8", "req/s", True),
    ("tags_walk", "walks_per_s", "tags/list n=100 walk ({tags} tags), whole list", "walks/s", True),
    ("tags_walk", "rps", "tags/list n=100 walk ({tags} tags), pages", "req/s", True),
    ("tag_setup", "rps", "tag PUT (setup, c=16)", "req/s", True),
    ("catalog_c1", "rps", "catalog ({repos} repositories), c=1", "req/s", True),
    ("catalog_c1", "p99_ms", "catalog ({repos} repositories), c=1 p99", "ms", False),
    ("catalog_c8", "rps", "catalog ({repos} repositories), c=8", "req/s", True),
    (
        "gc",
        "seconds",
        "GC over {gc_blobs} blobs (half garbage), whole command (cargohold: gc --server)",
        "s",
        False,
    ),
    (
        "gc",
        "local_seconds",
        "GC over {gc_blobs} blobs, cargohold gc in its own process (opens the stores)",
        "s",
        False,
    ),
    ("rss_c32", "process_mb", "peak RSS under c=32 load, largest process", "MB", False),
    ("rss_c32", "total_mb", "peak RSS under c=32 load, all processes", "MB", False),
]
# the small-request workloads again with token auth on (a bearer token on every request)
AUTH_KEYS = (
    "manifest_get_c1",
    "manifest_get_c32",
    "manifest_head_c1",
    "manifest_head_c32",
    "tiny_push",
    "tags_full_c1",
    "catalog_c1",
    "rss_c32",
)
ROWS += [
    (k + goals.AUTH_SUFFIX, m, f"{label} (token auth)", u, h)
    for k, m, label, u, h in list(ROWS)
    if k in AUTH_KEYS and m != "p50_ms"
]
# the machine's own limits: (key, metric, label, unit)
LIMIT_ROWS = [
    ("limit_sha256", "mbps", "machine: sha256 (hashlib, {size} buffer, 1 core)", "MB/s"),
    ("limit_fsync", "mbps", "machine: disk write {size} + fsync (data disk)", "MB/s"),
    ("limit_push", "mbps", "machine: push limit = min(sha256, fsync'd write)", "MB/s"),
    ("limit_loopback_1_sendfile", "mbps", "machine: {server} sendfile on, 1 client", "MB/s"),
    ("limit_loopback_1_readwrite", "mbps", "machine: {server} sendfile off, 1 client", "MB/s"),
    ("limit_loopback_1", "mbps", "machine: best loopback transfer, 1 client", "MB/s"),
    ("limit_loopback_n_sendfile", "mbps", "machine: {server} sendfile on, 8 clients", "MB/s"),
    ("limit_loopback_n_readwrite", "mbps", "machine: {server} sendfile off, 8 clients", "MB/s"),
    ("limit_loopback_n", "mbps", "machine: best loopback transfer, 8 clients", "MB/s"),
    ("limit_tiny_c1", "rps", "machine: {server} tiny file GET, c=1", "req/s"),
    ("limit_tiny_c32", "rps", "machine: {server} tiny file GET, c=32", "req/s"),
]
MACHINE = "machine"  # results key of the limit measurements (not a server)
RSS_LOOPS = ("manifest_get_c32", "manifest_head_c32")  # where memory is sampled


def build_summary(results: dict, config: dict) -> list[dict]:
    """The table's lines: machine limits, then every workload with its target and verdict."""
    labels = {
        "size": f"{config['blob_size_mib']} MiB",
        "tags": f"{config['tags'] + 1:,}",
        "images": config.get("tiny_images", "?"),
        "repos": f"{config.get('catalog_repositories', 0):,}",
        "gc_blobs": f"{config.get('gc_blobs', 0):,}",
        "server": config.get("loopback_server", "nginx").split("/")[0].split(" ")[0],
    }
    rows = [
        {"key": k, "metric": m, "label": lbl.format(**labels), "unit": u, "higher": h}
        for k, m, lbl, u, h in ROWS
    ]
    summary = report.summarize(rows, results)
    limit_lines = limit_summary(results.get(MACHINE, {}), labels)
    goals.apply(summary, {line["key"]: line["limit"] for line in limit_lines})
    summary = limit_lines + summary
    paginated = {
        name: {r.get("paginated") for r in per.get("tags_walk", []) if "paginated" in r}
        for name, per in results.items()
    }
    for ratio_field, num, den, _label in report.RATIOS:
        if num in paginated and den in paginated and paginated[num] != paginated[den]:
            # pages of 100 tags vs one page of all tags: pages/s are not comparable
            for line in summary:
                if (line["key"], line["metric"]) == ("tags_walk", "rps"):
                    line[ratio_field] = None
                    line["note"] = "pagination differs: pages/s not comparable"
                if (line["key"], line["metric"]) == ("tags_walk", "walks_per_s"):
                    line["note"] = "Distribution ignores n: one response against n-sized pages"
    return summary


def limit_summary(per: dict[str, list[dict]], labels: dict) -> list[dict]:
    """Medians of the limit measurements, and the derived limits (min / best of)."""
    values: dict[str, float | None] = {}
    runs: dict[str, list[float]] = {}
    for key, metric, *_ in LIMIT_ROWS:
        runs[key] = [r[metric] for r in per.get(key, []) if r.get(metric) is not None]
        values[key] = report.median(runs[key])

    def pick(fn, *keys: str) -> float | None:
        got = [values[k] for k in keys if values.get(k) is not None]
        return fn(got) if got else None

    values["limit_push"] = pick(min, "limit_sha256", "limit_fsync")
    for n in ("1", "n"):
        values[f"limit_loopback_{n}"] = pick(
            max, f"limit_loopback_{n}_sendfile", f"limit_loopback_{n}_readwrite"
        )
    return [
        {
            "key": key,
            "metric": metric,
            "operation": label.format(**labels),
            "unit": unit,
            "higher_is_better": True,
            "limit": values[key],
            "limit_runs": runs.get(key) or [],
        }
        for key, metric, label, unit in LIMIT_ROWS
        if values[key] is not None
    ]
