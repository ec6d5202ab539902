"""`cargohold retention`: policies that remove old tags, and running them now.

They open the same stores as `serve` (same settings), so removals invalidate the running
servers' Redis caches at once. Changes and removals are recorded in the audit log as
`cli:<OS user>`; each removed tag also in the tag history (via "retention").

Exit status: 0 on success, 1 when the registry refuses (a policy exists already, no such
policy), 2 for invalid input.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
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
from cargohold.core.retention import PolicyInvalid, RetentionService
from cargohold.errors import NameInvalid, TagInvalid
from cargohold.storage.meta.base import RetentionPolicy
from cargohold.stores import Stores

SEMANTICS = (
    "A policy applies to the tags matching its pattern (a glob: * ? [...]) in every "
    "repository of its namespace, or in one repository. In each repository it keeps a "
    "matching tag that is one of the KEEP_LAST most recently pushed (tags pushed at the "
    "same moment rank by name), or that was pushed or pulled within KEEP_DAYS days (a pull "
    "of the tag, or of the digest it names); give either or both. Immutable tags are always "
    "kept. Every other matching tag is removed; when several policies match a tag, it goes "
    "only if all of them would remove it. Tags matching no policy are never touched. Only "
    "tags are removed: the manifests they named go with garbage collection later. Policies "
    "also run on the garbage collection schedule (gc_interval_minutes), before each "
    "collection."
)

retention_app = command_group(
    help="Retention policies: remove old tags by count, age and pulls.\n\n" + SEMANTICS
)

NamespaceArgument = Annotated[str, typer.Argument(help="The namespace (team), no '/'.")]
_INPUT_ERRORS = (NameInvalid, TagInvalid, PolicyInvalid)


def register_retention_commands(app: typer.Typer) -> None:
    app.add_typer(retention_app, name="retention")


@contextmanager
def _stores(config: Path | None, data_dir: Path | None) -> Iterator[Stores]:
    """The configured stores; core errors become one line and an exit status."""
    with opened_stores(config, data_dir, _INPUT_ERRORS) as (_settings, stores):
        yield stores


def _service(stores: Stores) -> RetentionService:
    from cargohold.auth.audit import AuditStore

    return RetentionService(stores.meta, AuditStore(stores.engine))


def _record(stores: Stores, action: str, target: str, **detail: object) -> None:
    record_change(stores.engine, action, target, **detail)


def policy_json(policy: RetentionPolicy) -> dict[str, Any]:
    return {
        "id": policy.id,
        "namespace": policy.namespace,
        "repository": policy.repository or None,
        "tag_pattern": policy.tag_pattern,
        "keep_last": policy.keep_last,
        "keep_days": policy.keep_days,
        "created_by": policy.created_by,
        "created_at": policy.created_at.astimezone(UTC).isoformat(),
    }


def _table(title: str | None, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, title=title, box=None, header_style="bold", title_justify="left")
    for row in rows:
        table.add_row(*row)
    # Piped output is not cut to 80 columns: scripts and pagers get whole lines.
    width = None if sys.stdout.isatty() else 250
    Console(width=width, highlight=False).print(table)


def _when(value: str | datetime | None) -> str:
    if value is None:
        return "-"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _keep(policy: RetentionPolicy) -> str:
    parts = []
    if policy.keep_last is not None:
        parts.append(f"last {policy.keep_last}")
    if policy.keep_days is not None:
        parts.append(f"{policy.keep_days} days")
    return " or ".join(parts)


@retention_app.command("add", help="Add a retention policy to a namespace.\n\n" + SEMANTICS)
def retention_add(
    namespace: NamespaceArgument,
    pattern: Annotated[
        str,
        typer.Option("--pattern", help="Tags it applies to: a glob with * ? [...] (quote it)."),
    ],
    repository: Annotated[
        str | None,
        typer.Option("--repository", help="Only in this repository of the namespace (team/app)."),
    ] = None,
    keep_last: Annotated[
        int | None,
        typer.Option("--keep-last", min=0, help="Keep the N most recently pushed matching tags."),
    ] = None,
    keep_days: Annotated[
        int | None,
        typer.Option("--keep-days", min=0, help="Keep matching tags pushed or pulled in D days."),
    ] = None,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    if keep_last is None and keep_days is None:
        fail("give --keep-last, --keep-days or both", 2)
    with _stores(config, data_dir) as stores:
        policy = _service(stores).add_policy(
            namespace, pattern, repository, keep_last, keep_days, cli_actor()
        )
        _record(
            stores,
            "retention_policy_add",
            policy.repository or policy.namespace,
            policy=policy.id,
            pattern=policy.tag_pattern,
            keep_last=policy.keep_last,
            keep_days=policy.keep_days,
        )
    if json_output:
        typer.echo(json.dumps(policy_json(policy), indent=2))
    else:
        typer.echo(f"added {policy.describe()}: keep {_keep(policy)}")


@retention_app.command("list")
def retention_list(
    namespace: NamespaceArgument,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """List a namespace's retention policies, with the ids `retention remove` takes."""
    with _stores(config, data_dir) as stores:
        policies = _service(stores).policies(namespace)
    if json_output:
        typer.echo(json.dumps([policy_json(p) for p in policies], indent=2))
        return
    if not policies:
        typer.echo("(none)")
        return
    _table(
        None,
        ["id", "pattern", "repository", "keep last", "keep days", "created by", "created (UTC)"],
        [
            [
                str(p.id),
                p.tag_pattern,
                p.repository or "(all)",
                "-" if p.keep_last is None else str(p.keep_last),
                "-" if p.keep_days is None else str(p.keep_days),
                p.created_by or "-",
                _when(p.created_at),
            ]
            for p in policies
        ],
    )


@retention_app.command("remove")
def retention_remove(
    namespace: NamespaceArgument,
    policy_id: Annotated[
        int, typer.Argument(min=1, help="The policy's id (see `cargohold retention list`).")
    ],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove a retention policy (tags it removed already stay removed)."""
    with _stores(config, data_dir) as stores:
        service = _service(stores)
        policy = next((p for p in service.policies(namespace) if p.id == policy_id), None)
        if policy is None or not service.remove_policy(namespace, policy_id):
            fail(
                f"namespace {namespace} has no retention policy {policy_id}; "
                f"see `cargohold retention list {namespace}`"
            )
        _record(
            stores,
            "retention_policy_remove",
            policy.repository or namespace,
            policy=policy_id,
            pattern=policy.tag_pattern,
        )
    typer.echo(f"removed {policy.describe()}")


@retention_app.command("run", help="Apply the retention policies now.\n\n" + SEMANTICS)
def retention_run(
    namespace: Annotated[
        str | None, typer.Argument(help="Only this namespace (default: every namespace).")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="List what would be removed; remove nothing."),
    ] = False,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    with _stores(config, data_dir) as stores:
        report = _service(stores).run(namespace, dry_run=dry_run, actor=cli_actor()).to_dict()
    if json_output:
        typer.echo(json.dumps(report, indent=2))
        return
    _print_report(report)


def _print_report(report: dict[str, Any]) -> None:
    dry = report["dry_run"]
    rows = [
        [
            repository,
            item["tag"],
            item["digest"],
            _when(item["pushed_at"]),
            _when(item["pulled_at"]),
            ", ".join(str(p) for p in item["policies"]),
        ]
        for repository, entry in report["repositories"].items()
        for item in entry["removed"]
    ]
    if rows:
        title = "Would remove (dry run)" if dry else "Removed"
        columns = ["repository", "tag", "digest", "pushed (UTC)", "pulled (UTC)", "policies"]
        _table(title, columns, rows)
    skipped = [
        [repository, item["tag"], item["reason"]]
        for repository, entry in report["repositories"].items()
        for item in entry["skipped"]
    ]
    if skipped:
        _table("Skipped", ["repository", "tag", "why"], skipped)
    verb = "would remove" if dry else "removed"
    count = report["policies"]
    typer.echo(
        f"{count} {'policy' if count == 1 else 'policies'}: {verb} {report['removed']} tags, "
        f"kept {report['kept']}" + (f", skipped {report['skipped']}" if report["skipped"] else "")
    )
