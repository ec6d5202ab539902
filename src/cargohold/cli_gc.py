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
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar="CARGOHOLD_SERVER",
            help="Ask the registry serving at this address (http://host:port) to collect, "
            "through its admin API, instead of opening the database and storage here. "
            "Needs a registry admin's --username; the password (or a personal access "
            "token, the better choice for scripts) comes from CARGOHOLD_PASSWORD or is "
            "asked for.",
        ),
    ] = None,
    username: Annotated[
        str | None,
        typer.Option("--username", "-u", envvar="CARGOHOLD_USERNAME", help="Admin to sign in as."),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Remove blobs, manifests and uploads nothing references, while the registry serves.

    Marks what no tag, index, referrer subject or recent tag history reaches, then deletes
    it step by step, re-checking each deletion in the database, so a push that happens
    meanwhile never loses a blob. Ends with a summary of what was freed.

    With --server the running registry collects (as its scheduled collection does), so
    this machine needs no access to the database or the blob storage.
    """
    if server is not None:
        report = _collect_on_server(
            server, username, dry_run, delete_untagged, grace_hours, quiet=as_json
        )
        _print(report, as_json)
        return
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
    _print(report.to_dict(), as_json)


def _collect_on_server(
    server: str,
    username: str | None,
    dry_run: bool,
    delete_untagged: bool | None,
    grace_hours: float | None,
    quiet: bool,
) -> dict[str, object]:
    from cargohold.cli_remote import RemoteError, admin_call, password_for

    if not username:
        fail("--server needs --username (or CARGOHOLD_USERNAME): a registry admin", 2)
    body: dict[str, object] = {"dry_run": dry_run}
    if delete_untagged is not None:
        body["delete_untagged"] = delete_untagged
    if grace_hours is not None:
        body["grace_hours"] = grace_hours
    try:
        password = password_for(username)
        if not quiet:
            typer.echo(f"Collecting garbage on {server} ...", err=True)
        return admin_call(server, username, password, "POST", "/v1/gc", body)
    except RemoteError as exc:
        fail(exc.message, 3 if exc.status == 409 else 1)


def _print(report: dict[str, object], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print_summary(report)


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
