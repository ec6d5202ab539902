"""Machine description, result table, Markdown and JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (r.stdout or r.stderr).strip()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def _fs_of(path: Path) -> str:
    best, best_len = "unknown", -1
    try:
        with open("/proc/mounts") as f:
            for line in f:
                dev, mnt, fstype = line.split()[:3]
                if str(path).startswith(mnt) and len(mnt) > best_len:
                    best, best_len = f"{dev} ({fstype}) on {mnt}", len(mnt)
    except OSError:
        pass
    return best


def machine_info(repo: Path, cargohold_python: str, data_root: Path, dist_bin: str) -> dict:
    import httpx
    from wrkload import WRK

    git = _run(["git", "rev-parse", "--short", "HEAD"], cwd=repo) or "no commits"
    if git != "no commits" and " " in git:
        git = "no commits"
    dirty = bool(_run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo))
    cargo_ver = _run(
        [
            cargohold_python,
            "-c",
            "import importlib.metadata as m, sys; "
            "print(m.version('cargohold'), sys.version.split()[0])",
        ]
    )
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_gib": _mem_total_gib(),
        "kernel": platform.release(),
        "os": _run(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python_runner": platform.python_version(),
        "cargohold_python": cargo_ver.splitlines()[-1] if cargo_ver else "n/a",
        "cargohold_git": git + (" (dirty)" if dirty else ""),
        "distribution_version": _run([dist_bin, "--version"]),
        "wrk": (_run([WRK, "-v"]).splitlines() or ["n/a"])[0] if WRK else "not installed",
        "httpx": httpx.__version__,
        "data_filesystem": _fs_of(data_root),
        "note": (
            "load generator (wrk / httpx) runs on the same machine as the servers "
            f"({os.cpu_count()} cores shared); figures are relative, not absolute capacity"
        ),
    }


def median(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def summarize(rows: list[dict], results: dict[str, dict[str, list[dict]]]) -> list[dict]:
    """One line per metric: medians over runs, ratio oriented so that >1 favours cargohold."""
    out = []
    for row in rows:
        key, metric = row["key"], row["metric"]
        line: dict[str, Any] = {
            "key": key,
            "metric": metric,
            "operation": row["label"],
            "unit": row["unit"],
            "higher_is_better": row["higher"],
        }
        for target in ("cargohold", "distribution"):
            runs = results.get(target, {}).get(key, [])
            vals = [r[metric] for r in runs if r.get(metric) is not None]
            errs = [r["error"] for r in runs if r.get("error")]
            line[target] = median(vals)
            line[f"{target}_runs"] = vals
            line[f"{target}_error"] = errs[0] if errs and not vals else None
        a, b = line["cargohold"], line["distribution"]
        ratio = None
        if a and b:
            ratio = a / b if row["higher"] else b / a
        line["ratio"] = ratio
        out.append(line)
    return out


def _fmt(v: float | None, err: str | None) -> str:
    if v is None:
        return "ERR" if err else "-"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def table(summary: list[dict]) -> list[list[str]]:
    head = ["operation", "unit", "cargohold", "distribution", "ratio c/d"]
    body = [head]
    for s in summary:
        ratio = f"{s['ratio']:.2f}x" if s["ratio"] else "-"
        body.append(
            [
                s["operation"],
                s["unit"],
                _fmt(s["cargohold"], s["cargohold_error"]),
                _fmt(s["distribution"], s["distribution_error"]),
                ratio,
            ]
        )
    return body


def render_text(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        cells = [c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_md(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * 3) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(out)


def write_outputs(
    outdir: Path,
    stamp: str,
    meta: dict,
    config: dict,
    summary: list[dict],
    results: dict,
    notes: list[str],
) -> tuple[Path, Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    jpath = outdir / f"{stamp}.json"
    mpath = outdir / f"{stamp}.md"
    jpath.write_text(
        json.dumps(
            {
                "timestamp": stamp,
                "machine": meta,
                "config": config,
                "summary": summary,
                "runs": results,
                "notes": notes,
            },
            indent=2,
        )
        + "\n"
    )
    md = [f"# cargohold vs CNCF Distribution — {stamp}", ""]
    md.append(
        "Ratio is cargohold / distribution for throughput and distribution / cargohold "
        "for latency, so **> 1 means cargohold is better**. Values are medians over "
        f"{config['runs']} interleaved runs."
    )
    md += ["", render_md(table(summary)), "", "## Machine", ""]
    md += [f"- **{k}**: {v}" for k, v in meta.items()]
    md += ["", "## Configuration", ""]
    md += [f"- **{k}**: {v}" for k, v in config.items()]
    cpu_lines = _cpu_table(results)
    if cpu_lines:
        md += [
            "",
            "## CPU per measurement (median)",
            "",
            "Server and client columns are CPU seconds; *other load* is the share of the "
            "machine's CPU used by anything else meanwhile (other work on a shared machine, "
            "the idle peer server), from /proc/stat.",
            "",
            *cpu_lines,
        ]
    if notes:
        md += ["", "## Notes", "", *(f"- {n}" for n in notes)]
    mpath.write_text("\n".join(md) + "\n")
    return mpath, jpath


def _cpu_table(results: dict) -> list[str]:
    keys: list[str] = []
    for per in results.values():
        for k in per:
            if k not in keys:
                keys.append(k)
    if not keys:
        return []
    lines = [
        "| measurement | cargohold server | cargohold client | cargohold other load "
        "| distribution server | distribution client | distribution other load |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for k in keys:
        cells = []
        for target in ("cargohold", "distribution"):
            runs = results.get(target, {}).get(k, [])
            for fld in ("server_cpu_s", "client_cpu_s", "foreign_cpu_share"):
                m = median([r.get(fld) for r in runs])
                if m is None:
                    cells.append("-")
                elif fld == "foreign_cpu_share":
                    cells.append(f"{m:.0%}")
                else:
                    cells.append(f"{m:.2f}")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return lines
