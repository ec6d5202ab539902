"""`cargohold usage` and `cargohold quota`: storage used per registry, namespace and
repository, and the namespace quotas that limit it.

Sizes are human-readable in tables and exact byte counts in --json. Quota changes go to
the audit log as `cli:<OS user>` and apply to the next push at once.

Exit status: 0 on success, 1 when something named is missing, 2 for invalid input.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from cargohold.cli_common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    cli_actor,
    command_group,
    fail,
    opened_stores,
    record_change,
)
from cargohold.core.usage import (
    NamespaceUsage,
    QuotaStatus,
    RegistryUsage,
    UsageService,
    parse_limit,
    usage_dict,
    validate_namespace,
)
from cargohold.errors import NameInvalid
from cargohold.reference import validate_name
from cargohold.sizes import format_size
from cargohold.storage.meta.base import UsageRecord
from cargohold.stores import Stores

quota_app = command_group(
    help="Namespace quotas: the most bytes of unique blobs a namespace may store. A push "
    "that would exceed it is refused (403 DENIED); a layer shared by repositories of the "
    "namespace counts once."
)


def register_usage_commands(app: typer.Typer) -> None:
    app.command("usage")(usage)
    app.add_typer(quota_app, name="quota")


@contextmanager
def _stores(config: Path | None, data_dir: Path | None) -> Iterator[Stores]:
    with opened_stores(config, data_dir) as (_settings, stores):
        yield stores


def _namespace(value: str) -> str:
    """Checked before anything is opened: invalid input exits with status 2."""
    try:
        return validate_namespace(value)
    except NameInvalid as exc:
        fail(exc.message, 2)


def _record(stores: Stores, action: str, target: str, **detail: object) -> None:
    record_change(stores.engine, action, target, **detail)


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))


# ------------------------------------------------------------------------------------------
# usage


def usage(
    target: Annotated[
        str | None,
        typer.Argument(
            help="A namespace (team) or a repository (team/app); without it, the registry "
            "with every namespace.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Storage used: logical bytes (every manifest with the blobs it names, as pulls would
    transfer them), stored bytes (unique blobs, each counted once) and shared bytes (also
    linked in another repository, or for a namespace in another namespace)."""
    if target is not None:
        try:
            validate_name(target)
        except NameInvalid as exc:
            fail(exc.message, 2)
    with _stores(config, data_dir) as stores:
        service = UsageService(stores.meta)
        if target is None:
            registry = service.registry()
            if as_json:
                _echo_json(registry.to_dict())
            else:
                _print_registry(registry)
        elif "/" not in target:
            namespace = service.namespace(target)
            if as_json:
                _echo_json(namespace.to_dict())
            else:
                _print_namespace(namespace)
        else:
            repository = service.repository(target)
            if as_json:
                _echo_json({"repository": repository.name, **usage_dict(repository)})
            else:
                _print_repository(repository)


def _summary(title: str, record: UsageRecord, extra: list[tuple[str, str]]) -> Table:
    """Totals as one row per number: fits any terminal width."""
    table = Table(title=title, show_header=False)
    table.add_column("", no_wrap=True)
    table.add_column("", justify="right", no_wrap=True)
    rows = [
        ("logical (pulls, no dedup)", format_size(record.logical_bytes)),
        ("stored (unique blobs)", format_size(record.stored_bytes)),
        ("shared with others", format_size(record.shared_bytes)),
        ("blobs", str(record.blobs)),
        ("manifests", str(record.manifests)),
        *extra,
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _sized_columns(table: Table, first: str) -> None:
    table.add_column(first, overflow="fold")
    for column in ("logical", "stored", "shared"):
        table.add_column(column, justify="right", no_wrap=True)


def _sizes(record: UsageRecord) -> list[str]:
    return [
        format_size(record.logical_bytes),
        format_size(record.stored_bytes),
        format_size(record.shared_bytes),
    ]


def _quota_cells(namespace: NamespaceUsage) -> list[str]:
    if namespace.quota is None:
        return ["-", "-"]
    percent = namespace.used_percent
    return [
        format_size(namespace.quota.limit_bytes),
        "-" if percent is None else f"{percent:.1f}%",
    ]


def _print_registry(registry: RegistryUsage) -> None:
    console = Console()
    total = registry.total
    repositories = [("repositories", str(total.repositories))]
    console.print(_summary("Registry storage", total, repositories))
    if not registry.namespaces:
        console.print("no namespaces yet")
        return
    table = Table(title="Namespaces")
    _sized_columns(table, "namespace")
    table.add_column("repos", justify="right", no_wrap=True)
    table.add_column("quota", justify="right", no_wrap=True)
    table.add_column("used", justify="right", no_wrap=True)
    for namespace in registry.namespaces:
        table.add_row(
            namespace.name,
            *_sizes(namespace.usage),
            str(namespace.usage.repositories),
            *_quota_cells(namespace),
        )
    console.print(table)


def _print_namespace(namespace: NamespaceUsage) -> None:
    console = Console()
    limit, used = _quota_cells(namespace)
    extra = [
        ("repositories", str(namespace.usage.repositories)),
        ("quota", limit),
        ("quota used", used),
    ]
    console.print(_summary(f"Namespace {namespace.name}", namespace.usage, extra))
    if not namespace.repositories:
        console.print(f"namespace {namespace.name} has no repositories")
        return
    table = Table(title="Repositories")
    _sized_columns(table, "repository")
    table.add_column("blobs", justify="right", no_wrap=True)
    table.add_column("manifests", justify="right", no_wrap=True)
    for repository in namespace.repositories:
        table.add_row(
            repository.name,
            *_sizes(repository),
            str(repository.blobs),
            str(repository.manifests),
        )
    console.print(table)


def _print_repository(repository: UsageRecord) -> None:
    Console().print(_summary(f"Repository {repository.name}", repository, []))


# ------------------------------------------------------------------------------------------
# quota


def _describe(status: QuotaStatus) -> str:
    percent = status.to_dict()["used_percent"]
    used = "" if percent is None else f" ({percent:.1f}%)"
    return (
        f"namespace {status.quota.namespace}: quota {format_size(status.quota.limit_bytes)} "
        f"({status.quota.limit_bytes:,} bytes), using {format_size(status.usage_bytes)}"
        f"{used}, {format_size(status.remaining_bytes)} left"
    )


@quota_app.command("set")
def quota_set(
    namespace: Annotated[str, typer.Argument(help="The namespace (team).")],
    limit: Annotated[
        str,
        typer.Argument(
            help="Bytes, or a number with a unit: KB, MB, GB, TB (powers of 1000) or KiB, "
            "MiB, GiB, TiB (powers of 1024), e.g. 10GiB."
        ),
    ],
    as_json: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Set or change a namespace's quota. A limit below what it stores already is
    accepted: new blobs are then refused until tags are deleted and garbage collected."""
    namespace = _namespace(namespace)
    try:
        limit_bytes = parse_limit(limit)
    except ValueError as exc:
        fail(str(exc), 2)
    with _stores(config, data_dir) as stores:
        status = UsageService(stores.meta).set_quota(namespace, limit_bytes, cli_actor())
        _record(stores, "quota_set", namespace, limit_bytes=limit_bytes)
    if as_json:
        _echo_json(status.to_dict())
        return
    typer.echo(_describe(status))
    if status.usage_bytes > status.quota.limit_bytes:
        typer.echo("warning: the namespace is over its quota; pushes of new blobs are refused")


@quota_app.command("show")
def quota_show(
    namespace: Annotated[str, typer.Argument(help="The namespace (team).")],
    as_json: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show a namespace's quota and how much of it is used."""
    namespace = _namespace(namespace)
    with _stores(config, data_dir) as stores:
        status = UsageService(stores.meta).quota(namespace)
    if status is None:
        _no_quota(namespace)
    if as_json:
        _echo_json(status.to_dict())
    else:
        typer.echo(_describe(status))


@quota_app.command("remove")
def quota_remove(
    namespace: Annotated[str, typer.Argument(help="The namespace (team).")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Remove a namespace's quota: its pushes are no longer limited."""
    namespace = _namespace(namespace)
    with _stores(config, data_dir) as stores:
        removed = UsageService(stores.meta).remove_quota(namespace)
        if removed:
            _record(stores, "quota_remove", namespace)
    if not removed:
        _no_quota(namespace)
    typer.echo(f"removed the quota of namespace {namespace}")


@quota_app.command("list")
def quota_list(
    as_json: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Every namespace quota with its usage."""
    with _stores(config, data_dir) as stores:
        stored = {row.name: row.stored_bytes for row in stores.meta.namespace_usage()}
        statuses = [
            QuotaStatus(quota, stored.get(quota.namespace, 0))
            for quota in stores.meta.list_quotas()
        ]
    if as_json:
        _echo_json({"quotas": [status.to_dict() for status in statuses]})
        return
    if not statuses:
        typer.echo("no quotas")
        return
    for status in statuses:
        typer.echo(_describe(status))


def _no_quota(namespace: str) -> NoReturn:
    fail(f"namespace {namespace} has no quota", 1)
