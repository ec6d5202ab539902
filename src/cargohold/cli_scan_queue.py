"""`cargohold scan queue` and `scan rescan`: the background scanner's queue."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cargohold.cli_common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    fail,
    opened_stores,
    record_change,
)
from cargohold.cli_scan import _reference, scan_app


@scan_app.command("queue")
def queue_command(
    state: Annotated[
        str | None,
        typer.Option(help="Only jobs in this state: queued, running, done or failed."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Show at most this many jobs.")] = 20,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show the scan queue: jobs by state and the newest jobs.

    Pushed images are queued automatically; the serving process's scanner (setting
    scan_workers) runs the queue. A failed job was tried three times; its error says why.
    """
    from cargohold.scan.queue import STATES, ScanQueue

    if state is not None and state not in STATES:
        fail(f"--state must be one of {', '.join(STATES)}, not {state!r}", 2)
    with opened_stores(config, data_dir) as (_settings, stores):
        queue = ScanQueue(stores.engine)
        stats = queue.stats()
        jobs = queue.jobs(limit, state)
    if as_json:
        typer.echo(json.dumps({**stats.to_dict(), "jobs": jobs}, indent=2))
        return
    console = Console()
    counts = ", ".join(f"{n} {s}" for s, n in stats.counts.items())
    console.print(f"scan jobs: {counts}")
    if stats.oldest_queued_seconds is not None:
        console.print(f"oldest queued job waiting {stats.oldest_queued_seconds:.0f} s")
    if not jobs:
        return
    table = Table()
    for column in ("id", "state", "kind", "image", "tries", "queued", "error"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        image = f"{job['repository']}@{job['digest']}" if job["repository"] else "(every image)"
        table.add_row(
            str(job["id"]),
            job["state"],
            job["kind"],
            image,
            str(job["attempts"]),
            (job["enqueued_at"] or "")[:19],
            job["error"] or "",
        )
    console.print(table)


@scan_app.command("rescan")
def rescan_command(
    image: Annotated[
        str | None,
        typer.Argument(
            help="REPOSITORY:TAG or REPOSITORY@DIGEST to queue; leave out with --all.",
            show_default=False,
        ),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Queue a rescan of every stored image.")
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Queue a scan for the background scanner (`scan run` scans here and now instead).

    Importing advisories already queues a rescan of every image.
    """
    from cargohold.core.registry import Registry
    from cargohold.errors import RegistryError
    from cargohold.scan.queue import MANUAL, ScanQueue

    if (image is None) == (not every):
        fail("name one image, or pass --all (not both)", 2)
    with opened_stores(config, data_dir) as (settings, stores):
        queue = ScanQueue(stores.engine)
        if every:
            job = queue.enqueue_rescan_all()
            record_change(stores.engine, "scan_queued", "*")
            typer.echo(f"queued job {job}: a rescan of every stored image")
            return
        repository, reference = _reference(str(image))
        registry = Registry(stores.blobs, stores.meta, settings.max_manifest_size)
        try:
            digest = registry.manifests.get(repository, reference).digest
        except RegistryError as exc:
            fail(f"{image}: {exc}", 1)
        job = queue.enqueue(repository, digest, MANUAL)
        record_change(stores.engine, "scan_queued", repository, digest=digest)
    typer.echo(f"queued job {job}: {repository}@{digest}")
