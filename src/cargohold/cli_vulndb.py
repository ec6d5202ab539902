"""`cargohold vulndb`: load OSV vulnerability advisories and show what is loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cargohold.cli_common import ConfigOption, DataDirOption, command_group, fail, opened_stores

vulndb_app = command_group(
    help="Vulnerability advisories (OSV records) used to match installed packages."
)


def register_vulndb_commands(app: typer.Typer) -> None:
    app.add_typer(vulndb_app, name="vulndb")


@vulndb_app.command("import")
def import_command(
    path: Annotated[
        Path,
        typer.Argument(
            help="A folder of OSV *.json records (searched recursively), a .zip of them "
            "(e.g. osv.dev's all.zip), or one .json file.",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Import OSV advisories; records already stored are replaced unless stored newer.

    Records that cannot be used are skipped and counted by reason; the import goes on.
    """
    from cargohold.vulndb.importer import SourceError, import_path, open_source

    try:
        source = open_source(path)
    except SourceError as exc:
        fail(str(exc), 2)
    if source.total == 0:
        fail(f"no .json files in {path}", 1)
    from cargohold.scan.queue import ScanQueue
    from cargohold.vulndb.store import AdvisoryStore

    console = Console(stderr=True)
    with opened_stores(config, data_dir) as (_settings, stores):
        store = AdvisoryStore(stores.engine)
        with Progress(
            TextColumn("Importing advisories"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=as_json or not console.is_terminal,
        ) as bar:
            task = bar.add_task("import", total=source.total)

            def progress(done: int, _total: int) -> None:
                if done % 200 == 0 or done == _total:
                    bar.update(task, completed=done)

            try:
                report = import_path(store, source, progress)
            except SourceError as exc:
                fail(str(exc), 2)
        # Every stored result was matched against older advisories: queue a rescan of all
        # images, which the serving process's scan worker runs.
        ScanQueue(stores.engine).enqueue_rescan_all()
    if not as_json:
        console.print("every stored image is queued for a rescan against these advisories")
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    _print_import(report.to_dict())


def _print_import(report: dict[str, Any]) -> None:
    console = Console()
    table = Table(title=f"Imported {report['source']}")
    table.add_column("")
    table.add_column("count", justify="right")
    table.add_row("files read", f"{report['files']:,}")
    table.add_row("records saved", f"{report['records']:,}")
    table.add_row("  new", f"{report['added']:,}")
    table.add_row("  replaced", f"{report['updated']:,}")
    table.add_row("  withdrawn", f"{report['withdrawn']:,}")
    table.add_row("kept (stored copy newer)", f"{report['kept_newer']:,}")
    for ecosystem, count in report["by_ecosystem"].items():
        table.add_row(f"ecosystem {ecosystem}", f"{count:,}")
    table.add_row("records skipped", f"{sum(report['skipped'].values()):,}")
    table.add_row("seconds", str(report["seconds"]))
    console.print(table)
    if report["skipped"]:
        skipped = Table(title="Skipped records")
        skipped.add_column("reason")
        skipped.add_column("count", justify="right")
        skipped.add_column("e.g.")
        for reason, count in report["skipped"].items():
            examples = ", ".join(report["skipped_examples"].get(reason, [])[:3])
            skipped.add_row(reason, f"{count:,}", examples)
        console.print(skipped)
    if report["ignored"]:
        ignored = Table(title="Parts of records left out")
        ignored.add_column("reason")
        ignored.add_column("count", justify="right")
        for reason, count in report["ignored"].items():
            ignored.add_row(reason, f"{count:,}")
        console.print(ignored)


@vulndb_app.command("status")
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show when advisories were last imported and how many are loaded, per ecosystem."""
    from cargohold.vulndb.store import AdvisoryStore

    with opened_stores(config, data_dir) as (_settings, stores):
        status = AdvisoryStore(stores.engine).status()
    if as_json:
        typer.echo(json.dumps(status.to_dict(), indent=2))
        return
    if status.last_import_at is None:
        typer.echo("no advisories imported yet: run `cargohold vulndb import PATH`")
        return
    table = Table(title="Vulnerability advisories")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("last import", status.last_import_at.isoformat(timespec="seconds"))
    table.add_row("from", status.last_import_source or "")
    table.add_row("imports", str(status.imports))
    table.add_row("records", f"{status.records:,}")
    table.add_row("withdrawn", f"{status.withdrawn:,}")
    for ecosystem, count in status.by_ecosystem.items():
        table.add_row(f"ecosystem {ecosystem}", f"{count:,}")
    Console().print(table)
