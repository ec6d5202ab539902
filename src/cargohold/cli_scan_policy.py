"""`cargohold scan policy|allow|allow-list|disallow`: the pull policy of a namespace.

Importing this module adds the commands to `cargohold scan` (cli_scan's scan_app). They
open the same stores as `serve`; running servers see a change within
the policy_cache_seconds setting. Changes are recorded in the audit log as `cli:<OS user>`.

Exit status: 0 on success, 1 when there is nothing to remove, 2 for invalid input.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

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
from cargohold.cli_scan import scan_app
from cargohold.scan.policy import (
    AllowEntry,
    ScanPolicy,
    ScanPolicyInvalid,
    ScanPolicyStore,
    check_namespace,
    parse_expiry,
)
from cargohold.stores import Stores

SEMANTICS = (
    "With a policy, a pull (GET) of an image or index in the namespace is refused when its "
    "latest scan has a finding at or above the policy's severity that the allow-list does "
    "not except ('unknown' severities count at 'low' only), or when it has no scan yet and "
    "unscanned images are denied. Signatures, SBOMs and other artifacts always pass, and so "
    "does HEAD. Without a policy every pull is allowed. Running servers apply a change "
    "within policy_cache_seconds (5 seconds unless configured)."
)

policy_app = command_group(help="The namespace's vulnerability-scan pull policy.\n\n" + SEMANTICS)

NamespaceArgument = Annotated[str, typer.Argument(help="The namespace (team), no '/'.")]
VulnerabilityArgument = Annotated[
    str,
    typer.Argument(help="An advisory ID or alias, e.g. CVE-2024-1234 (any letter case)."),
]


class Severity(StrEnum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"


@contextmanager
def _stores(config: Path | None, data_dir: Path | None) -> Iterator[Stores]:
    with opened_stores(config, data_dir, (ScanPolicyInvalid,)) as (_settings, stores):
        yield stores


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _entries_json(entries: list[AllowEntry], now: datetime) -> list[dict[str, Any]]:
    return [entry.to_dict(now) for entry in entries]


def _print_entries(entries: list[AllowEntry], now: datetime) -> None:
    from rich.console import Console
    from rich.table import Table

    if not entries:
        typer.echo("allow-list: (empty)")
        return
    table = Table(
        "vulnerability",
        "expires (UTC)",
        "reason",
        "added by",
        "added (UTC)",
        title="allow-list",
        box=None,
        header_style="bold",
        title_justify="left",
    )
    for entry in entries:
        expires = _when(entry.expires_at) if entry.expires_at else "never"
        if entry.expired(now):
            expires += " (expired)"
        table.add_row(
            entry.vulnerability,
            expires,
            entry.reason or "-",
            entry.created_by or "-",
            _when(entry.created_at),
        )
    width = None if sys.stdout.isatty() else 250
    Console(width=width, highlight=False).print(table)


def _policy_text(policy: ScanPolicy) -> str:
    unscanned = "allowed" if policy.allow_unscanned else "denied"
    return (
        f"namespace {policy.namespace}: pulls refused for findings of severity "
        f"{policy.min_severity} or worse; unscanned images {unscanned} "
        f"(set by {policy.updated_by or '-'} at {_when(policy.updated_at)} UTC)"
    )


@policy_app.command("set", help="Set (or replace) a namespace's pull policy.\n\n" + SEMANTICS)
def policy_set(
    namespace: NamespaceArgument,
    severity: Annotated[
        Severity,
        typer.Option(
            "--severity",
            case_sensitive=False,
            help="Refuse images with findings of this severity or worse.",
        ),
    ],
    deny_unscanned: Annotated[
        bool,
        typer.Option(
            "--deny-unscanned/--allow-unscanned",
            help="Refuse images with no scan result yet, or let them through until scanned.",
        ),
    ] = False,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    with _stores(config, data_dir) as stores:
        policy = ScanPolicyStore(stores.engine).set(
            namespace, severity.value, not deny_unscanned, cli_actor()
        )
        record_change(
            stores.engine,
            "scan_policy_set",
            namespace,
            min_severity=policy.min_severity,
            allow_unscanned=policy.allow_unscanned,
        )
    if json_output:
        typer.echo(json.dumps(policy.to_dict(), indent=2))
    else:
        typer.echo(_policy_text(policy))


@policy_app.command("show")
def policy_show(
    namespace: NamespaceArgument,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Show a namespace's pull policy and its allow-list."""
    now = datetime.now(UTC)
    with _stores(config, data_dir) as stores:
        store = ScanPolicyStore(stores.engine)
        check_namespace(namespace)
        policy = store.get(namespace)
        entries = store.allowlist(namespace)
    if json_output:
        data = {
            "namespace": namespace,
            "policy": policy.to_dict() if policy else None,
            "allowlist": _entries_json(entries, now),
        }
        typer.echo(json.dumps(data, indent=2))
        return
    if policy is None:
        typer.echo(
            f"namespace {namespace} has no scan policy: every pull is allowed "
            f"(set one with `cargohold scan policy set {namespace} --severity high`)"
        )
    else:
        typer.echo(_policy_text(policy))
    _print_entries(entries, now)


@policy_app.command("remove")
def policy_remove(
    namespace: NamespaceArgument,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove a namespace's pull policy: every pull is allowed again (the allow-list stays)."""
    with _stores(config, data_dir) as stores:
        if not ScanPolicyStore(stores.engine).remove(namespace):
            fail(f"namespace {namespace} has no scan policy; see `cargohold scan policy show`")
        record_change(stores.engine, "scan_policy_remove", namespace)
    typer.echo(f"removed the scan policy of namespace {namespace}: every pull is allowed")


@scan_app.command("allow")
def allow_command(
    namespace: NamespaceArgument,
    vulnerability: VulnerabilityArgument,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            help="When the exception ends: YYYY-MM-DD (midnight UTC) or an ISO 8601 time. "
            "Default: never.",
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (shown in the allow-list).")
    ] = None,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Except a vulnerability from the namespace's pull policy (an advisory ID or any alias,
    such as its CVE ID), until --expires; adding it again replaces the entry."""
    with _stores(config, data_dir) as stores:
        expires_at = parse_expiry(expires) if expires is not None else None
        entry = ScanPolicyStore(stores.engine).allow(
            namespace, vulnerability, expires_at, reason, cli_actor()
        )
        record_change(
            stores.engine,
            "scan_allow_add",
            namespace,
            vulnerability=entry.vulnerability,
            expires_at=entry.expires_at.isoformat() if entry.expires_at else None,
            reason=entry.reason,
        )
    if json_output:
        typer.echo(json.dumps(entry.to_dict(datetime.now(UTC)), indent=2))
        return
    until = f"until {_when(entry.expires_at)} UTC" if entry.expires_at else "with no expiry"
    typer.echo(f"namespace {namespace} allows {entry.vulnerability} {until}")


@scan_app.command("allow-list")
def allow_list_command(
    namespace: NamespaceArgument,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """List the namespace's exceptions; expired ones are marked and except nothing."""
    now = datetime.now(UTC)
    with _stores(config, data_dir) as stores:
        check_namespace(namespace)
        entries = ScanPolicyStore(stores.engine).allowlist(namespace)
    if json_output:
        typer.echo(json.dumps(_entries_json(entries, now), indent=2))
    else:
        _print_entries(entries, now)


@scan_app.command("disallow")
def disallow_command(
    namespace: NamespaceArgument,
    vulnerability: VulnerabilityArgument,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove an exception from the namespace's allow-list."""
    with _stores(config, data_dir) as stores:
        entry = ScanPolicyStore(stores.engine).disallow(namespace, vulnerability)
        if entry is None:
            fail(
                f"namespace {namespace} has no allow-list entry {vulnerability!r}; see "
                f"`cargohold scan allow-list {namespace}`"
            )
        record_change(
            stores.engine, "scan_allow_remove", namespace, vulnerability=entry.vulnerability
        )
    typer.echo(f"namespace {namespace} no longer allows {entry.vulnerability}")


scan_app.add_typer(policy_app, name="policy")
