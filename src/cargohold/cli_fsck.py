"""`cargohold fsck`: check that the metadata and the stored blobs agree, and repair."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cargohold.cli_common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    fail,
    opened_stores,
    phased_progress,
)

_PHASES = {
    "metadata": "Reading the metadata",
    "blobs": "Checking blobs",
    "storage": "Listing stored blobs",
    "manifests": "Checking manifests",
}
_STYLE = {"error": "red", "warning": "yellow", "info": "dim"}


def register_fsck_command(app: typer.Typer) -> None:
    app.command("fsck")(fsck)


def fsck(
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Fix what is safe to fix and say what was done: delete orphan blob files "
            "older than the grace, quarantine blobs whose bytes do not match their digest, "
            "forget missing blobs no manifest names, re-link blobs a manifest names. "
            "Takes the garbage collector's lock.",
        ),
    ] = False,
    verify_content: Annotated[
        bool,
        typer.Option(
            "--verify-content/--no-verify-content",
            help="Hash every blob's bytes (default), or only compare sizes (fast).",
        ),
    ] = True,
    repository: Annotated[
        str | None,
        typer.Option(
            "--repository",
            help="Check one repository: its tags, manifests and the blobs they use "
            "(stored files no metadata records are then not looked for).",
        ),
    ] = None,
    grace_hours: Annotated[
        float | None,
        typer.Option(
            "--grace-hours",
            min=0,
            help="Stored blobs without metadata younger than this may be a push being "
            "committed: reported, never deleted (default: gc_grace_hours, 24).",
        ),
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Check every blob's digest and size, every reference and that storage and metadata
    agree; with --repair, fix what is safe.

    Checks: recorded blobs are stored, with their size and digest; stored blobs are
    recorded (orphans); manifests name recorded blobs their repository links; indexes
    list manifests that exist; tags name manifests that exist; manifest bytes match their
    digest. Referrers whose subject is absent are reported as information (the OCI spec
    allows them).

    Exit status: 0 when nothing needs attention (after repairs), 1 when problems remain,
    2 for bad input (an unknown repository), 3 when a garbage collection holds the lock.
    """

    from cargohold.core.fsck import Fsck, FsckBusy, FsckOptions, UnknownRepository
    from cargohold.core.gc import grace_period

    with opened_stores(config, data_dir, input_errors=(UnknownRepository,)) as (settings, stores):
        options = FsckOptions(
            repair=repair,
            verify_content=verify_content,
            grace=grace_period(grace_hours if grace_hours is not None else settings.gc_grace_hours),
            repository=repository,
        )
        with phased_progress(_PHASES, not as_json, 24) as progress:
            try:
                report = Fsck(stores.meta, stores.blobs, stores.engine).run(options, progress)
            except FsckBusy as exc:
                fail(exc.message, 3)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report.to_dict())
    if report.problems:
        raise typer.Exit(1)


def _print_report(report: dict) -> None:
    console = Console()
    checked = report["checked"]
    console.print(
        f"Checked {checked['repositories']} repositories, {checked['manifests']} manifests, "
        f"{checked['tags']} tags, {checked['blobs']} blobs "
        f"({checked.get('bytes_hashed', 0):,} bytes hashed), "
        f"{checked['stored_files']} stored files in {report['seconds']} s."
    )
    findings = report["findings"]
    if not findings:
        console.print("[green]No problems found.[/green]")
        return
    counts: dict[tuple[str, str], int] = {}
    for finding in findings:
        key = (finding["severity"], finding["kind"])
        counts[key] = counts.get(key, 0) + 1
    repaired_kinds: dict[str, int] = {}
    for item in report["repaired"]:
        repaired_kinds[item["kind"]] = repaired_kinds.get(item["kind"], 0) + 1
    summary = Table(title="fsck findings")
    summary.add_column("severity")
    summary.add_column("kind")
    summary.add_column("found", justify="right")
    summary.add_column("repaired", justify="right")
    order = {"error": 0, "warning": 1, "info": 2}
    for (severity, kind), count in sorted(counts.items(), key=lambda i: (order[i[0][0]], i[0][1])):
        style = _STYLE[severity]
        summary.add_row(
            f"[{style}]{severity}[/{style}]", kind, str(count), str(repaired_kinds.get(kind, 0))
        )
    console.print(summary)
    details = Table(title="details", show_lines=False)
    details.add_column("kind")
    details.add_column("where", overflow="fold")
    details.add_column("what", overflow="fold")
    details.add_column("repair", overflow="fold")
    for finding in findings:
        details.add_row(
            finding["kind"],
            escape(finding["subject"]),
            escape(finding["detail"]),
            escape(finding["repair"] or ("" if report["repair"] else "-")),
        )
    console.print(details)
    left = report["problems_left"]
    if left:
        hint = "" if report["repair"] else "; `cargohold fsck --repair` fixes what is safe"
        console.print(f"[red]{left} problem(s) need attention{hint}.[/red]")
    else:
        console.print("[green]Nothing needs attention.[/green]")
