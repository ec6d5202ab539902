"""Issue 10's targets, the machine limits each row is compared with, and PASS/FAIL.

A row's target is any of: a minimum cargohold / Distribution ratio (oriented so that > 1
favours cargohold, latency and seconds inverted), a minimum share of a machine limit
(blob push and pull), a maximum absolute value (memory per worker process). A row passes
when every part of its target holds; it has no verdict when a figure is missing.
Latency rows (p50, p99), setup samples and the limits themselves are for information.
"""

from __future__ import annotations

from dataclasses import dataclass

from report import CARGOHOLD

AUTH_SUFFIX = "_auth"
SMALL_REQUESTS_C1 = 2.0  # manifest GET/HEAD at one connection
SMALL_REQUESTS_CN = 3.0  # ... at 32 connections, and the tiny image pushes (8 clients)
LISTINGS = 5.0  # tags/list and catalog: a database against directory walks
LIMIT_SHARE = 0.80  # blob push/pull against the machine's limits
RSS_PER_WORKER_MB = 150.0


@dataclass(frozen=True)
class Goal:
    ratio: float | None = None
    limit_share: float | None = None
    max_value: float | None = None

    def text(self) -> str:
        parts = []
        if self.ratio is not None:
            parts.append(f"≥{self.ratio:g}x")
        if self.limit_share is not None:
            parts.append(f"≥{self.limit_share:.0%} of limit")
        if self.max_value is not None:
            parts.append(f"≤{self.max_value:g}")
        return ", ".join(parts)


# (key without the auth suffix, metric) -> goal
GOALS: dict[tuple[str, str], Goal] = {
    ("push_mono", "mbps"): Goal(ratio=1.0, limit_share=LIMIT_SHARE),
    ("push_chunked", "mbps"): Goal(ratio=1.0, limit_share=LIMIT_SHARE),
    ("pull_1", "mbps"): Goal(ratio=1.0, limit_share=LIMIT_SHARE),
    ("pull_n", "mbps"): Goal(ratio=1.0, limit_share=LIMIT_SHARE),
    ("manifest_get_c1", "rps"): Goal(ratio=SMALL_REQUESTS_C1),
    ("manifest_get_c32", "rps"): Goal(ratio=SMALL_REQUESTS_CN),
    ("manifest_head_c1", "rps"): Goal(ratio=SMALL_REQUESTS_C1),
    ("manifest_head_c32", "rps"): Goal(ratio=SMALL_REQUESTS_CN),
    ("tiny_push", "images_per_s"): Goal(ratio=SMALL_REQUESTS_CN),
    ("tags_full_c1", "rps"): Goal(ratio=LISTINGS),
    ("tags_full_c8", "rps"): Goal(ratio=LISTINGS),
    # No target for the n=100 walk: Distribution 2.8 ignores `n` and answers one page of
    # every tag, where the spec says "the response MUST include <int> results" (n of them);
    # cargohold honours it, so the walk compares 50 requests with one. The tags list
    # itself is measured, with its issue-10 target, by the tags_full rows.
    ("catalog_c1", "rps"): Goal(ratio=LISTINGS),
    ("catalog_c8", "rps"): Goal(ratio=LISTINGS),
    ("gc", "seconds"): Goal(ratio=1.0),
    ("rss_c32", "process_mb"): Goal(max_value=RSS_PER_WORKER_MB),
}

# workload row -> machine limit row it is compared with (the limit rows' own keys)
LIMIT_OF: dict[tuple[str, str], str] = {
    ("push_mono", "mbps"): "limit_push",
    ("push_chunked", "mbps"): "limit_push",
    ("pull_1", "mbps"): "limit_loopback_1",
    ("pull_n", "mbps"): "limit_loopback_n",
    # for reference only (no target): what a web server does with a tiny file here
    ("manifest_get_c1", "rps"): "limit_tiny_c1",
    ("manifest_head_c1", "rps"): "limit_tiny_c1",
    ("manifest_get_c32", "rps"): "limit_tiny_c32",
    ("manifest_head_c32", "rps"): "limit_tiny_c32",
}


def base_key(key: str) -> str:
    return key[: -len(AUTH_SUFFIX)] if key.endswith(AUTH_SUFFIX) else key


def goal_for(key: str, metric: str) -> Goal | None:
    return GOALS.get((base_key(key), metric))


def apply(summary: list[dict], limits: dict[str, float | None]) -> None:
    """Add limit, pct_of_limit, target and verdict to each summary line (in place)."""
    for line in summary:
        if line["key"].startswith("limit_"):
            continue
        value = line.get(CARGOHOLD)
        limit_key = LIMIT_OF.get((line["key"], line["metric"]))
        limit = limits.get(limit_key) if limit_key else None
        line["limit"] = limit
        line["pct_of_limit"] = value / limit if value and limit else None
        goal = goal_for(line["key"], line["metric"])
        line["target"] = goal.text() if goal else None
        line["verdict"] = judge(goal, line) if goal else None


def judge(goal: Goal, line: dict) -> str | None:
    checks = []
    if goal.ratio is not None:
        ratio = line.get("ratio")
        checks.append(None if ratio is None else ratio >= goal.ratio)
    if goal.limit_share is not None:
        pct = line.get("pct_of_limit")
        checks.append(None if pct is None else pct >= goal.limit_share)
    if goal.max_value is not None:
        value = line.get(CARGOHOLD)
        checks.append(None if value is None else value <= goal.max_value)
    if any(c is False for c in checks):
        return "FAIL"
    if any(c is None for c in checks):
        return None
    return "PASS"
