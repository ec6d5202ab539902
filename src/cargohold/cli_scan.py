"""`cargohold scan`: scan a stored image for known vulnerabilities and show the results."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cargohold.cli_common import (
    ConfigOption,
    DataDirOption,
    command_group,
    fail,
    fail_with,
    opened_stores,
)
from cargohold.errors import RegistryError

scan_app = command_group(
    help="Vulnerability scans of stored images (advisories from `cargohold vulndb import`)."
)

ImageArgument = Annotated[
    str,
    typer.Argument(
        help="The image: REPOSITORY:TAG or REPOSITORY@DIGEST (REPOSITORY alone means :latest)."
    ),
]


def register_scan_commands(app: typer.Typer) -> None:
    app.add_typer(scan_app, name="scan")
    import cargohold.cli_scan_policy  # adds `scan policy|allow|allow-list|disallow`
    import cargohold.cli_scan_queue  # noqa: F401 - adds `scan queue|rescan` to scan_app


def _reference(text: str) -> tuple[str, str]:
    from cargohold.reference import parse_ref

    try:
        ref = parse_ref(text)
    except RegistryError as exc:
        fail_with(exc)
    return ref.repository, ref.digest or ref.tag or "latest"


@scan_app.command("run")
def run_command(
    image: ImageArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Scan an image now, store the result and print the report.

    An index is scanned platform by platform. Artifacts that are not images (signatures,
    SBOMs...) are reported as such, with nothing to scan.
    """
    from cargohold.core.registry import Registry
    from cargohold.scan.results import ScanResultStore
    from cargohold.scan.service import ScanService
    from cargohold.vulndb.store import AdvisoryStore

    repository, reference = _reference(image)
    status = Console(stderr=True)
    with opened_stores(config, data_dir) as (settings, stores):
        registry = Registry(stores.blobs, stores.meta, settings.max_manifest_size)
        results = ScanResultStore(stores.engine)
        db_version = results.advisory_db_version()
        if db_version is None:
            status.print(
                "[yellow]warning:[/] no advisories imported: every package will show as clean "
                "(run `cargohold vulndb import PATH`)"
            )
        with status.status(f"Scanning {repository}:{reference}", spinner="dots"):
            report = ScanService(registry, AdvisoryStore(stores.engine)).scan(repository, reference)
        report.advisory_db = db_version
        results.save(report)
    status.print(f"scanned {report.digest} in {report.duration_seconds:.2f} s; result stored")
    data = report.to_dict()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        print_report(data)


@scan_app.command("report")
def report_command(
    image: ImageArgument,
    output: Annotated[
        str, typer.Option("--format", help="table or json.", case_sensitive=False)
    ] = "table",
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Print the latest stored scan result of an image (exit status 1 when there is none)."""
    from cargohold.core.registry import Registry
    from cargohold.scan.results import ScanResultStore

    output = output.lower()
    if output not in ("table", "json"):
        fail(f"--format must be table or json, not {output!r}", 2)
    repository, reference = _reference(image)
    with opened_stores(config, data_dir) as (settings, stores):
        registry = Registry(stores.blobs, stores.meta, settings.max_manifest_size)
        digest = registry.manifests.get(repository, reference).digest
        stored = ScanResultStore(stores.engine).latest(repository, digest)
    if stored is None:
        fail(
            f"{repository}:{reference} ({digest}) has not been scanned yet: run "
            f"`cargohold scan run {image}`",
            1,
        )
    data = stored.report.to_dict()
    if output == "json":
        typer.echo(json.dumps(data, indent=2))
    else:
        print_report(data)


def print_report(data: dict[str, Any]) -> None:
    console = Console()
    head = Table(title=f"Scan of {data['repository']}:{data['reference']}", show_header=False)
    head.add_column("")
    head.add_column("")
    head.add_row("digest", data["digest"])
    head.add_row("scanned at", data["scanned_at"])
    head.add_row("duration", f"{data['duration_seconds']:.2f} s")
    db = data.get("advisory_db")
    head.add_row(
        "advisories",
        "none imported" if not db else f"import #{db['import_id']} of {db['imported_at']}",
    )
    head.add_row(
        "findings", ", ".join(f"{n} {s}" for s, n in data["severity_counts"].items() if n) or "none"
    )
    console.print(head)
    if data["status"] != "scanned":
        console.print(data.get("message") or data["status"])
    for image in data["images"]:
        title = image["platform"] or image["digest"]
        if image["status"] != "scanned":
            console.print(f"{title}: {image['status']} ({image.get('message') or ''})")
            continue
        os_info = image.get("os") or {}
        packages = ", ".join(f"{n} {eco}" for eco, n in image["packages"].items()) or "none"
        console.print(
            f"[bold]{title}[/] {image['digest']}\n"
            f"  os: {os_info.get('pretty_name') or os_info.get('id') or 'unknown'}\n"
            f"  packages: {image['package_total']} ({packages})"
        )
        if image["warnings"]:
            console.print(
                "  warnings: " + ", ".join(f"{k} {v}" for k, v in image["warnings"].items())
            )
        if not image["findings"]:
            console.print("  no known vulnerabilities")
            continue
        table = Table()
        table.add_column("severity")
        table.add_column("package")
        table.add_column("installed")
        table.add_column("fixed in")
        table.add_column("advisory")
        table.add_column("aliases")
        table.add_column("link", overflow="fold")
        for finding in image["findings"]:
            table.add_row(
                finding["severity"],
                finding["package"],
                finding["installed_version"],
                ", ".join(finding["fixed_versions"]) or "-",
                finding["advisory"],
                ", ".join(finding["aliases"]),
                finding["link"] or "",
            )
        console.print(table)


@scan_app.command("sbom")
def sbom_command(
    image: ImageArgument,
    attach: Annotated[
        bool,
        typer.Option(
            "--attach",
            help="Store each BOM in the registry as a referrer of its image (artifactType "
            "application/vnd.cyclonedx+json, listed by `oras discover`); prints the "
            "referrer digests. Every run adds new referrers: earlier SBOMs are kept.",
        ),
    ] = False,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the BOM to this file instead of standard output (also with --attach).",
        ),
    ] = None,
    platform: Annotated[
        str | None,
        typer.Option("--platform", help="Of an index, only this platform (e.g. linux/amd64)."),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Inventory an image and emit its SBOM as CycloneDX 1.5 JSON.

    Without --attach the BOM is printed (or written with --output); an index needs
    --platform then, since there is one BOM per platform image. With --attach, every
    platform image of an index (or the one chosen with --platform) gets its own BOM,
    attached through the referrers API (subject = that platform's manifest).
    """
    from cargohold.core.registry import Registry
    from cargohold.scan.sbom import attach_sbom, bom_bytes, cyclonedx, image_inventories

    repository, reference = _reference(image)
    with opened_stores(config, data_dir) as (settings, stores):
        registry = Registry(stores.blobs, stores.meta, settings.max_manifest_size)
        images = [
            i
            for i in image_inventories(registry, repository, reference)
            if platform is None or i.platform == platform
        ]
        if not images:
            which = f" for platform {platform}" if platform else ""
            fail(f"{image} has no container image{which} to inventory", 1)
        if len(images) > 1 and (not attach or output is not None):
            fail(
                f"{image} is an index of {len(images)} images: choose one with --platform "
                "(or use --attach without --output, which attaches one BOM per platform)",
                2,
            )
        attached = []
        boms = []
        for item in images:
            data = bom_bytes(cyclonedx(item.inventory, repository, item.digest))
            boms.append(data)
            if attach:
                attached.append((item, attach_sbom(registry, repository, item.descriptor, data)))
    if attach:
        for item, referrer in attached:
            typer.echo(f"{item.platform or '-'}\t{item.digest}\tsbom {referrer}")
        if output is not None:
            with open(output, "wb") as fh:
                fh.write(boms[0])
        return
    if output is not None:
        with open(output, "wb") as fh:
            fh.write(boms[0])
    else:
        typer.echo(boms[0].decode(), nl=False)
