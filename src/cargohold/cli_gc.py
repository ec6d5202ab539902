"""`cargohold gc`: collect garbage while the registry keeps serving."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cargohold.cli_common import ConfigOption, DataDirOption, fail, opened_stores, phased_progress

_PHASES = {
    "mark": "Finding garbage",
    "manifests": "Deleting manifests",
    "links": "Unlinking blobs",
    "blobs": "Forgetting blobs",
    "files": "Deleting blob files",
    "uploads": "Removing abandoned uploads",
}


def register_gc_command(app: typer.Typer) -> None:
    app.command("gc")(gc)


def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be removed; remove nothing.")
    ] = False,
    delete_untagged: Annotated[
        bool | None,
        typer.Option(
            "--delete-untagged/--keep-untagged",
            help="Also remove manifests nothing names (default: the gc_delete_untagged "
            "setting). Tag history still protects rollback targets.",
        ),
    ] = None,
    grace_hours: Annotated[
        float | None,
        typer.Option(
            "--grace-hours",
            min=0,
            help="Keep unreferenced content younger than this (default: gc_grace_hours, 24). "
            "Lower it only when no push is slower than that.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Remove blobs, manifests and uploads nothing references, while the registry serves.

    Marks what no tag, index, referrer subject or recent tag history reaches, then deletes
    it step by step, re-checking each deletion in the database, so a push that happens
    meanwhile never loses a blob. Ends with a summary of what was freed.
    """
    from cargohold.core.gc import GcBusy, collect, options_from

    with opened_stores(config, data_dir) as (settings, stores):
        options = options_from(
            grace_hours if grace_hours is not None else settings.gc_grace_hours,
            delete_untagged if delete_untagged is not None else settings.gc_delete_untagged,
            settings.tag_history_keep_days,
            settings.upload_max_age_hours,
            dry_run,
        )
        with phased_progress(_PHASES, not as_json, 28) as progress:
            try:
                report = collect(stores.meta, stores.blobs, options, "cli", progress)
            except GcBusy as exc:
                fail(exc.message, 3)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    _print_summary(report.to_dict())


def _print_summary(report: dict[str, object]) -> None:
    from rich.console import Console
    from rich.table import Table

    verb = "would free" if report["dry_run"] else "freed"
    table = Table(title=f"Garbage collection ({'dry run' if report['dry_run'] else 'done'})")
    table.add_column("")
    table.add_column("count", justify="right")
    table.add_row("manifests deleted", str(report["manifests_deleted"]))
    table.add_row("blob links removed", str(report["links_removed"]))
    table.add_row("blobs deleted", str(report["blobs_deleted"]))
    table.add_row(f"bytes {verb}", f"{report['bytes_freed']:,}")
    table.add_row("abandoned uploads removed", str(report["uploads_removed"]))
    table.add_row("seconds", str(report["seconds"]))
    Console().print(table)
