"""Machine description, result table, Markdown and JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any

CARGOHOLD = "cargohold"  # embedded: SQLite + files (the JSON key predates the scale-out mode)
SCALEOUT = "cargohold-scaleout"  # PostgreSQL + S3 (moto) + Redis
DISTRIBUTION = "distribution"
TARGETS = (CARGOHOLD, SCALEOUT, DISTRIBUTION)  # column and measuring order
# (summary field, numerator target, denominator target, column label); the ratio is
# oriented so that > 1 favours the cargohold side
RATIOS = (
    ("ratio", CARGOHOLD, DISTRIBUTION, "c/d"),
    ("ratio_scaleout", SCALEOUT, DISTRIBUTION, "s/d"),
)


def shown_targets(results: dict) -> list[str]:
    """Targets with results, in TARGETS order; the two classic columns are always shown."""
    present = set(results)
    if SCALEOUT not in present:
        present |= {CARGOHOLD, DISTRIBUTION}
    return [t for t in TARGETS if t in present]


def column_name(target: str, targets: list[str]) -> str:
    if target == CARGOHOLD and SCALEOUT in targets:
        return "cargohold-embedded"
    return target


def ratio_label(label: str, targets: list[str]) -> str:
    return "e/d" if label == "c/d" and SCALEOUT in targets else label


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
    """One line per metric: medians over runs, ratios oriented so that >1 favours cargohold."""
    out = []
    targets = shown_targets(results)
    for row in rows:
        key, metric = row["key"], row["metric"]
        line: dict[str, Any] = {
            "key": key,
            "metric": metric,
            "operation": row["label"],
            "unit": row["unit"],
            "higher_is_better": row["higher"],
        }
        for target in targets:
            runs = results.get(target, {}).get(key, [])
            vals = [r[metric] for r in runs if r.get(metric) is not None]
            errs = [r["error"] for r in runs if r.get("error")]
            line[target] = median(vals)
            line[f"{target}_runs"] = vals
            line[f"{target}_error"] = errs[0] if errs and not vals else None
        for field, num, den, _label in RATIOS:
            if num not in targets or den not in targets:
                continue
            a, b = line.get(num), line.get(den)
            ratio = None
            if a and b:
                ratio = a / b if row["higher"] else b / a
            line[field] = ratio
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


def _summary_targets(summary: list[dict]) -> list[str]:
    first = next((s for s in summary if not _is_limit(s)), {})
    return [t for t in TARGETS if f"{t}_runs" in first]


def _is_limit(line: dict) -> bool:
    return line["key"].startswith("limit_")


def table(summary: list[dict]) -> list[list[str]]:
    targets = _summary_targets(summary)
    ratios = [(f, lbl) for f, num, den, lbl in RATIOS if num in targets and den in targets]
    head = ["operation", "unit", *(column_name(t, targets) for t in targets)]
    head += [f"ratio {ratio_label(lbl, targets)}" for _f, lbl in ratios]
    judged = any("verdict" in s or _is_limit(s) for s in summary)
    if judged:
        head += ["machine limit", "% of limit", "target", "result"]
    body = [head]
    for s in summary:
        row = [s["operation"], s["unit"]]
        if _is_limit(s):
            row += ["-"] * (len(targets) + len(ratios))
        else:
            row += [_fmt(s.get(t), s.get(f"{t}_error")) for t in targets]
            row += [f"{s[f]:.2f}x" if s.get(f) else "-" for f, _lbl in ratios]
        if judged:
            pct = s.get("pct_of_limit")
            row += [
                _fmt(s.get("limit"), None),
                f"{pct:.0%}" if pct else "-",
                s.get("target") or "-",
                s.get("verdict") or "-",
            ]
        body.append(row)
    return body


def verdict_lines(summary: list[dict]) -> list[str]:
    """How many of issue 10's targets were met, and which were not."""
    judged = [s for s in summary if s.get("target")]
    if not judged:
        return []
    passed = [s for s in judged if s.get("verdict") == "PASS"]
    failed = [s["operation"] for s in judged if s.get("verdict") == "FAIL"]
    unknown = [s["operation"] for s in judged if not s.get("verdict")]
    out = [
        f"Targets (issue 10): {len(passed)} of {len(judged)} met. The % of limit column is "
        "cargohold's figure against the machine limit named in its row (blob push: the lower "
        "of sha256 and fsync'd write; blob pull: the best loopback transfer with the same "
        "client; manifest rows: nginx serving a tiny file, for reference only).",
        "",
    ]
    if failed:
        out += [f"Not met: {'; '.join(failed)}.", ""]
    if unknown:
        out += [f"Not judged (a figure is missing): {'; '.join(unknown)}.", ""]
    return out


def ratio_legend(summary: list[dict], bold: bool = False) -> str:
    """What the ratio columns mean, for the table printed above it."""
    targets = _summary_targets(summary)
    parts = []
    for _f, num, den, lbl in RATIOS:
        if num in targets and den in targets:
            parts.append(f"{ratio_label(lbl, targets)} = {column_name(num, targets)} / {den}")
    if not parts:
        return ""
    better = "> 1 means cargohold is better"
    if bold:
        better = f"**{better}**"
    return "; ".join(parts) + f" for throughput, inverted for latency: {better}"


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
    align = ["---"] * 2 + ["---:"] * (len(rows[0]) - 2)
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join(align) + "|"]
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
    targets = _summary_targets(summary)
    if SCALEOUT in targets:
        md.append(
            "cargohold-embedded is SQLite + files; cargohold-scaleout is PostgreSQL + S3 "
            "(a moto server) + Redis. **Scale-out blob push/pull figures measure moto, a "
            "Python S3 emulator far slower than MinIO or AWS S3, more than cargohold**; the "
            "manifest and tags figures do not touch S3 (manifests and tags live in the "
            "database; manifest reads may be answered from cargohold's Redis cache) and are "
            "meaningful; the per-process CPU table below shows which backing service each "
            "measurement used."
        )
        md.append("")
    legend = ratio_legend(summary, bold=True)
    md.append(
        (f"Ratios: {legend}. " if legend else "")
        + f"Values are medians over {config['runs']} interleaved runs."
    )
    md += ["", render_md(table(summary)), ""]
    md += verdict_lines(summary)
    md += ["## Machine", ""]
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
            "kernel writeback), from /proc/stat; the idle peer servers are not in it.",
            "",
            *cpu_lines,
        ]
    parts_lines = _parts_table(results)
    if parts_lines:
        md += [
            "",
            "## cargohold-scaleout server CPU by process (median)",
            "",
            "The scale-out server column above is the sum of these CPU seconds: cargohold's "
            "processes, the moto S3 server, the PostgreSQL backends of the bench database "
            "(PostgreSQL's shared background processes are in *other load*) and the shared "
            "redis-server process.",
            "",
            *parts_lines,
        ]
    if notes:
        md += ["", "## Notes", "", *(f"- {n}" for n in notes)]
    mpath.write_text("\n".join(md) + "\n")
    return mpath, jpath


def _cpu_table(results: dict) -> list[str]:
    keys: list[str] = []
    for target in TARGETS:  # the servers only: the machine limits have no server CPU
        for k, runs in results.get(target, {}).items():
            if k not in keys and any("server_cpu_s" in r for r in runs):
                keys.append(k)
    if not keys:
        return []
    targets = [t for t in TARGETS if t in results]
    names = [column_name(t, targets) for t in targets]
    head = [f"{n} {c}" for n in names for c in ("server", "client", "other load")]
    lines = [
        "| measurement | " + " | ".join(head) + " |",
        "|---|" + "---:|" * len(head),
    ]
    for k in keys:
        cells = []
        for target in targets:
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


def _parts_table(results: dict) -> list[str]:
    per = results.get(SCALEOUT, {})
    parts: list[str] = []
    for runs in per.values():
        for r in runs:
            for part in r.get("server_cpu_parts_s", {}):
                if part not in parts:
                    parts.append(part)
    if not parts:
        return []
    lines = ["| measurement | " + " | ".join(parts) + " |", "|---|" + "---:|" * len(parts)]
    for k, runs in per.items():
        cells = []
        for part in parts:
            m = median([r.get("server_cpu_parts_s", {}).get(part) for r in runs])
            cells.append("-" if m is None else f"{m:.2f}")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return lines
