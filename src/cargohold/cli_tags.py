"""Commands for tags as versions: history, rollback, retag, resolve, list, immutable rules.

They open the same stores as `serve` (same settings, so SQLite + files by default, or
PostgreSQL, S3 and Redis in scale-out), so a change made here invalidates the running
servers' Redis caches at once. Every change is recorded in the tag history and the audit
log as `cli:<OS user>`.

Exit status: 0 on success, 1 when the registry refuses or lacks something (unknown
repository, tag or digest, an immutable tag, ...), 2 for invalid input.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
    fail_with,
    opened_stores,
    record_change,
)
from cargohold.core.registry import Registry
from cargohold.core.versioning import MAX_HISTORY_PAGE, TagChange
from cargohold.errors import (
    NameInvalid,
    NameUnknown,
    RegistryError,
    TagInvalid,
)
from cargohold.reference import Ref, parse_ref, validate_tag
from cargohold.storage.meta import ImmutableRule, TagEvent, TagRecord
from cargohold.stores import Stores

tag_app = command_group(
    help="Tags as versions: history of every change, rollback, retag without re-upload, "
    "resolve to a digest, list. References are NAME:TAG or NAME@DIGEST, without the "
    "registry host (team/app:prod, team/app@sha256:...)."
)
immutable_app = command_group(
    help="Immutable-tag rules: tags matching a pattern (v*, release-*) can never be moved "
    "or deleted, by a push, a delete, a rollback or a retag."
)

_SHORT_HEX = 12


def register_tag_commands(app: typer.Typer) -> None:
    app.add_typer(tag_app, name="tag")
    app.add_typer(immutable_app, name="immutable")


# ------------------------------------------------------------------------------------------
# References


def _tagged(text: str, what: str) -> Ref:
    ref = parse_ref(text)
    if ref.tag is None:
        hint = f"{ref.repository}:TAG"
        if ref.digest:
            raise TagInvalid(f"{what} must name a tag, not a digest: {hint}")
        raise TagInvalid(f"{what} must name a tag: {hint}")
    return ref


# ------------------------------------------------------------------------------------------
# Opening the stores, errors, audit


@dataclass
class Session:
    registry: Registry
    stores: Stores


@contextmanager
def _session(config: Path | None, data_dir: Path | None) -> Iterator[Session]:
    """The registry over the configured stores; core errors become one line and an exit."""
    with opened_stores(config, data_dir) as (settings, stores):
        yield Session(Registry(stores.blobs, stores.meta, settings.max_manifest_size), stores)


def _checked(text: str, parse: Any, *args: Any) -> Any:
    """Parse command-line input before opening anything; bad input exits with status 2."""
    try:
        return parse(text, *args)
    except RegistryError as exc:
        fail_with(exc)


def _record(session: Session, action: str, target: str, **detail: object) -> None:
    """Changes go to the audit log like every management command's, as cli:<OS user>."""
    record_change(session.stores.engine, action, target, **detail)


# ------------------------------------------------------------------------------------------
# Output


def _short(digest: str | None) -> str:
    if digest is None:
        return "-"
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}:{encoded[:_SHORT_HEX]}"


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _table(columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    if not rows:
        typer.echo("(none)")
        return
    table = Table(*columns, box=None, header_style="bold")
    for row in rows:
        table.add_row(*row)
    # Piped output is not cut to 80 columns: scripts and pagers get whole lines.
    width = None if sys.stdout.isatty() else 250
    Console(width=width, highlight=False).print(table)


def _echo_json(value: object) -> None:
    typer.echo(json.dumps(value, indent=2))


def event_json(event: TagEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "repository": event.repository,
        "tag": event.tag,
        "action": event.action,
        "old_digest": event.old_digest,
        "new_digest": event.new_digest,
        "via": event.via,
        "actor": event.actor,
        "at": _iso(event.at),
    }


def record_json(repository: str, record: TagRecord) -> dict[str, Any]:
    return {
        "repository": repository,
        "tag": record.name,
        "digest": record.digest,
        "media_type": record.media_type,
        "size": record.size,
        "updated_at": _iso(record.updated_at),
    }


def rule_json(rule: ImmutableRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "namespace": rule.namespace,
        "repository": rule.repository or None,
        "pattern": rule.pattern,
        "created_by": rule.created_by,
        "created_at": _iso(rule.created_at),
    }


def change_json(change: TagChange, previous: str | None) -> dict[str, Any]:
    return {
        "repository": change.repository,
        "tag": change.tag,
        "digest": change.digest,
        "previous_digest": previous,
        "changed": change.event is not None,
        "event": None if change.event is None else event_json(change.event),
    }


def _describe_change(change: TagChange) -> str:
    name = f"{change.repository}:{change.tag}"
    if change.event is None:
        return f"{name} already points at {change.digest}; nothing changed"
    if change.event.old_digest is None:
        return f"{name} now {change.digest} (the tag did not exist)"
    return f"{name} now {change.digest} (was {change.event.old_digest})"


# ------------------------------------------------------------------------------------------
# tag ...


def _help(*paragraphs: str) -> str:
    return "\n\n".join(paragraphs)


HISTORY_HELP = _help(
    "Show the history of a tag (or of every tag of a repository), newest first.",
    "Each entry says what happened (created, moved, deleted), from which digest to which, "
    "through what (push, delete, rollback, retag, retention) and by whom. An entry's id, or"
    " its time, can be given to `cargohold tag rollback --to`.",
    "Digests are shortened in the table; --json prints them whole.",
)

ROLLBACK_HELP = _help(
    "Point a tag back at an earlier manifest, without uploading anything.",
    "Without --to this undoes the tag's latest change: a push, a retag, a rollback, or a "
    "delete of the tag. The manifest must still be in the repository. Prints the new and "
    "the previous digest.",
)

ADD_HELP = _help(
    "Tag an existing manifest (retag), without uploading anything.",
    "Across repositories of one namespace the manifest and its blobs are linked, not "
    "copied. An existing target tag is moved, unless an immutable-tag rule protects it.",
)

RESOLVE_HELP = _help(
    "Print only the digest a tag names now (for scripts and deployment manifests).",
    "For example: image: team/app@$(cargohold tag resolve team/app:prod). With --json: the "
    "digest, media type, manifest size and when the tag last changed.",
)

LIST_HELP = _help(
    "List a repository's tags with their digests, sizes and update times.",
    "The size is the manifest's own size in bytes; times are UTC.",
)

IMMUTABLE_ADD_HELP = _help(
    "Make the tags matching a pattern immutable, in a namespace or one repository.",
    "From now on no push, delete, rollback or retag may move or remove them; new matching "
    "tags can still be created. Prints the rule's id (for `cargohold immutable remove`).",
)


@tag_app.command("history", help=HISTORY_HELP)
def tag_history(
    reference: Annotated[
        str,
        typer.Argument(
            help="NAME:TAG for one tag (team/app:prod), or NAME for every tag of the repository."
        ),
    ],
    limit: Annotated[
        int,
        typer.Option(
            "--limit", min=1, max=MAX_HISTORY_PAGE, help="Show at most this many entries."
        ),
    ] = 50,
    before: Annotated[
        int | None,
        typer.Option(
            "--before", min=1, help="Only entries older than this entry id (the next page)."
        ),
    ] = None,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Show the history of a tag (or of every tag of a repository), newest first."""
    ref = _checked(reference, parse_ref)
    if ref.digest:
        fail_with(TagInvalid(f"history is kept per tag: give {ref.repository}:TAG or NAME"))
    with _session(config, data_dir) as session:
        events = session.registry.tags.history(ref.repository, ref.tag, limit, before)
    if json_output:
        _echo_json([event_json(e) for e in events])
        return
    columns = ["id", "time (UTC)", *([] if ref.tag else ["tag"]), "action", "old → new", "via"]
    rows = [
        [
            str(e.id),
            _time(e.at),
            *([] if ref.tag else [e.tag]),
            e.action,
            f"{_short(e.old_digest)} → {_short(e.new_digest)}",
            e.via,
            e.actor or "-",
        ]
        for e in events
    ]
    _table([*columns, "actor"], rows)


@tag_app.command("rollback", help=ROLLBACK_HELP)
def tag_rollback(
    reference: Annotated[str, typer.Argument(help="The tag to move back: NAME:TAG.")],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Where to: a manifest digest (sha256:...), a history entry id (see `tag "
            "history`), or an ISO 8601 time (2026-11-30T09:15:00Z; no zone means UTC) = "
            "where the tag pointed then. Default: where it pointed before its latest change.",
        ),
    ] = None,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Point a tag back at an earlier manifest, without uploading anything."""
    ref = _checked(reference, _tagged, "the tag to roll back")
    assert ref.tag is not None
    with _session(config, data_dir) as session:
        target = None if to is None else to.strip()
        change = session.registry.tags.rollback(ref.repository, ref.tag, target, cli_actor())
        previous = change.event.old_digest if change.event else change.digest
        if change.event is not None:
            _record(
                session,
                "tag_rollback",
                ref.repository,
                tag=ref.tag,
                digest=change.digest,
                previous=previous,
                to=to,
            )
    if json_output:
        _echo_json(change_json(change, previous))
    else:
        typer.echo(_describe_change(change))


@tag_app.command("add", help=ADD_HELP)
def tag_add(
    source: Annotated[
        str,
        typer.Argument(help="What to tag: NAME@DIGEST or NAME:TAG (team/app@sha256:...)."),
    ],
    target: Annotated[
        str,
        typer.Argument(
            help="The new tag: TAG in the same repository (v1.2.3), or NAME:TAG in another "
            "repository of the same namespace (team/other:v1.2.3)."
        ),
    ],
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Tag an existing manifest (retag), without uploading anything."""
    src = _checked(source, parse_ref)
    if src.tag is None and src.digest is None:
        fail_with(TagInvalid(f"say what to tag: {src.repository}:TAG or {src.repository}@DIGEST"))
    if "/" in target or ":" in target or "@" in target:
        dest = _checked(target, _tagged, "the target")
    else:
        dest = Ref(src.repository, tag=_checked(target, validate_tag))
    assert dest.tag is not None
    with _session(config, data_dir) as session:
        change = session.registry.tags.add(
            src.repository, src.digest or src.tag or "", dest.repository, dest.tag, cli_actor()
        )
        previous = change.event.old_digest if change.event else change.digest
        if change.event is not None:
            _record(
                session,
                "tag_add",
                dest.repository,
                tag=dest.tag,
                digest=change.digest,
                previous=previous,
                source=str(src),
            )
    if json_output:
        _echo_json({**change_json(change, previous), "source": str(src)})
    else:
        typer.echo(_describe_change(change))


@tag_app.command("resolve", help=RESOLVE_HELP)
def tag_resolve(
    reference: Annotated[str, typer.Argument(help="NAME:TAG, e.g. team/app:prod.")],
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Print only the digest a tag names now (for scripts and deployment manifests)."""
    ref = _checked(reference, _tagged, "the reference to resolve")
    assert ref.tag is not None
    with _session(config, data_dir) as session:
        record = session.registry.tags.resolve(ref.repository, ref.tag)
    if json_output:
        _echo_json(record_json(ref.repository, record))
    else:
        typer.echo(record.digest)


@tag_app.command("list", help=LIST_HELP)
def tag_list(
    repository: Annotated[str, typer.Argument(help="The repository: NAME, e.g. team/app.")],
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """List a repository's tags with their digests, sizes and update times."""
    ref = _checked(repository, parse_ref)
    if ref.tag or ref.digest:
        fail_with(NameInvalid(f"give only the repository: {ref.repository}"))
    with _session(config, data_dir) as session:
        records = session.registry.tags.records(ref.repository, None, None)
    if json_output:
        _echo_json([record_json(ref.repository, r) for r in records])
        return
    _table(
        ["tag", "digest", "size", "updated (UTC)"],
        [[r.name, _short(r.digest), str(r.size), _time(r.updated_at)] for r in records],
    )


# ------------------------------------------------------------------------------------------
# immutable ...


@immutable_app.command("add", help=IMMUTABLE_ADD_HELP)
def immutable_add(
    namespace: Annotated[str, typer.Argument(help="The namespace (team), no '/'.")],
    pattern: Annotated[
        str,
        typer.Argument(help="Tags to protect: a tag or a glob with * ? [...] (quote it: 'v*')."),
    ],
    repository: Annotated[
        str | None,
        typer.Option("--repository", help="Only in this repository of the namespace (team/app)."),
    ] = None,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Make the tags matching a pattern immutable, in a namespace or one repository."""
    with _session(config, data_dir) as session:
        rule = session.registry.tags.add_rule(namespace, pattern, repository, cli_actor())
        _record(
            session,
            "immutable_add",
            repository or namespace,
            rule=rule.id,
            pattern=rule.pattern,
        )
    if json_output:
        _echo_json(rule_json(rule))
    else:
        typer.echo(f"added {rule.describe()}")


@immutable_app.command("list")
def immutable_list(
    namespace: Annotated[str, typer.Argument(help="The namespace (team), no '/'.")],
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """List a namespace's immutable-tag rules, with the ids `immutable remove` takes."""
    with _session(config, data_dir) as session:
        rules = session.registry.tags.rules(namespace)
    if json_output:
        _echo_json([rule_json(r) for r in rules])
        return
    _table(
        ["id", "pattern", "repository", "created by", "created (UTC)"],
        [
            [
                str(r.id),
                r.pattern,
                r.repository or "(all)",
                r.created_by or "-",
                _time(r.created_at),
            ]
            for r in rules
        ],
    )


@immutable_app.command("remove")
def immutable_remove(
    namespace: Annotated[str, typer.Argument(help="The namespace (team), no '/'.")],
    rule_id: Annotated[
        int, typer.Argument(min=1, help="The rule's id (see `cargohold immutable list`).")
    ],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove an immutable-tag rule: its tags may be moved and deleted again."""
    with _session(config, data_dir) as session:
        rule = next((r for r in session.registry.tags.rules(namespace) if r.id == rule_id), None)
        if rule is None or not session.registry.tags.remove_rule(namespace, rule_id):
            raise NameUnknown(
                f"namespace {namespace} has no immutable-tag rule {rule_id}; "
                f"see `cargohold immutable list {namespace}`"
            )
        _record(
            session,
            "immutable_remove",
            rule.repository or namespace,
            rule=rule_id,
            pattern=rule.pattern,
        )
    typer.echo(f"removed {rule.describe()}")
