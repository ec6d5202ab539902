"""`cargohold diff`: what changes between two stored images (layers, packages, vulnerabilities)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cargohold.cli_common import ConfigOption, DataDirOption, fail, fail_with, opened_stores
from cargohold.errors import RegistryError


def register_diff_command(app: typer.Typer) -> None:
    app.command("diff")(diff_command)


def _reference(text: str) -> tuple[str, str]:
    from cargohold.reference import parse_ref

    try:
        ref = parse_ref(text)
    except RegistryError as exc:
        fail_with(exc)
    return ref.repository, ref.digest or ref.tag or "latest"


def diff_command(
    before: Annotated[
        str, typer.Argument(help="The image now (REPOSITORY:TAG or REPOSITORY@DIGEST).")
    ],
    after: Annotated[
        str, typer.Argument(help="The image to compare it with (a release, a rollback target).")
    ],
    platform: Annotated[
        str | None,
        typer.Option(
            "--platform",
            help="For multi-platform images: the platform to compare, as os/arch[/variant] "
            "(default: linux/amd64 when both have it, else the first both have).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the diff as JSON.")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show what changes from one image to another: layers added and removed, packages
    upgraded, downgraded, added and removed, and known vulnerabilities fixed and
    introduced (advisories from `cargohold vulndb import`). Nothing is stored.
    """
    from cargohold.core.registry import Registry
    from cargohold.scan.diff import DiffError, diff_images
    from cargohold.vulndb.store import AdvisoryStore

    left, right = _reference(before), _reference(after)
    with opened_stores(config, data_dir) as (settings, stores):
        registry = Registry(stores.blobs, stores.meta, settings.max_manifest_size)
        try:
            diff = diff_images(registry, AdvisoryStore(stores.engine), left, right, platform)
        except DiffError as exc:
            fail(str(exc), 1)
    data = diff.to_dict()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        print_diff(data)


def _name(side: dict[str, Any]) -> str:
    sep = "@" if side["reference"].startswith("sha256:") else ":"
    return f"{side['repository']}{sep}{side['reference']}"


def print_diff(data: dict[str, Any]) -> None:
    console = Console()
    left, right = data["from"], data["to"]
    head = Table(title=f"{_name(left)} -> {_name(right)}", show_header=False)
    head.add_column("")
    head.add_column("from")
    head.add_column("to")
    head.add_row("image", left["image_digest"], right["image_digest"])
    head.add_row("platform", left["platform"] or "-", right["platform"] or "-")
    head.add_row(
        "os",
        (left["os"] or {}).get("pretty_name") or "unknown",
        (right["os"] or {}).get("pretty_name") or "unknown",
    )
    head.add_row("packages", str(left["package_total"]), str(right["package_total"]))
    head.add_row(
        "vulnerabilities", str(left["vulnerability_total"]), str(right["vulnerability_total"])
    )
    console.print(head)
    for note in data["notes"]:
        console.print(f"[yellow]note:[/] {note}")

    layers = data["layers"]
    console.print(
        f"\n[bold]Layers[/]: {len(layers['added'])} added, {len(layers['removed'])} removed, "
        f"{layers['common']} in common"
    )
    for digest in layers["added"]:
        console.print(f"  + {digest}")
    for digest in layers["removed"]:
        console.print(f"  - {digest}")

    packages = data["packages"]
    console.print(f"\n[bold]Packages[/] ({packages['unchanged']} unchanged)")
    changes = [c for c in ("upgraded", "downgraded", "changed", "added", "removed") if packages[c]]
    if not changes:
        console.print("  no changes")
    for change in changes:
        table = Table(title=f"{change} ({len(packages[change])})", title_justify="left")
        table.add_column("ecosystem")
        table.add_column("package")
        table.add_column("from")
        table.add_column("to")
        table.add_column("note")
        for p in packages[change]:
            table.add_row(
                p["ecosystem"],
                p["name"],
                ", ".join(p["from"]) or "-",
                ", ".join(p["to"]) or "-",
                p["note"] or "",
            )
        console.print(table)

    vulns = data["vulnerabilities"]
    console.print(f"\n[bold]Vulnerabilities[/] ({vulns['unchanged']} in both)")
    if not vulns["fixed"] and not vulns["introduced"]:
        console.print("  no changes")
    for kind in ("fixed", "introduced"):
        if not vulns[kind]:
            continue
        table = Table(title=f"{kind} ({len(vulns[kind])})", title_justify="left")
        table.add_column("severity")
        table.add_column("advisory")
        table.add_column("package")
        table.add_column("installed")
        table.add_column("fixed in")
        table.add_column("aliases")
        for f in vulns[kind]:
            table.add_row(
                f["severity"],
                f["advisory"],
                f["package"],
                f["installed_version"],
                ", ".join(f["fixed_versions"]) or "-",
                ", ".join(f["aliases"]),
            )
        console.print(table)
