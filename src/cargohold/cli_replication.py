"""`cargohold replication`: copy images to and from other registries by rules.

    cargohold replication endpoint add dr https://dr.example --username bot --password-stdin
    cargohold replication add to-dr --endpoint dr --direction push --source 'team/*' --tags 'v*'
    cargohold replication run to-dr --wait
    cargohold replication executions to-dr

A serving replica's replication worker carries out the runs (`run --here` does it in this
process instead). Changes are recorded in the audit log as `cli:<OS user>`.

Exit status: 0 on success, 1 when the registry refuses (a name exists, no such rule, a
run that failed with --wait), 2 for invalid input.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
from cargohold.config import Settings
from cargohold.stores import Stores

replication_app = command_group(
    help="Replication: rules that push local images to another registry or pull images "
    "from one, on push events, on a schedule or by hand, with a log of every run."
)
endpoint_app = command_group(help="Remote registries that rules replicate to or from.")
replication_app.add_typer(endpoint_app, name="endpoint")

RuleArgument = Annotated[str, typer.Argument(help="The rule's name.")]


def register_replication_commands(app: typer.Typer) -> None:
    app.add_typer(replication_app, name="replication")


@contextmanager
def _opened(config: Path | None, data_dir: Path | None) -> Iterator[tuple[Settings, Stores, Any]]:
    from cargohold.replication import (
        ReplicationConflict,
        ReplicationInvalid,
        ReplicationStore,
        secret_box,
    )

    with opened_stores(config, data_dir) as (settings, stores):
        try:
            yield settings, stores, ReplicationStore(stores.engine, secret_box(settings))
        except ReplicationInvalid as exc:
            fail(str(exc), 2)
        except ReplicationConflict as exc:
            fail(str(exc), 1)


def _show(data: dict[str, Any], json_output: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2, default=str) if json_output else text)


def _rule_or_fail(store: Any, name: str) -> Any:
    rule = store.rule_named(name)
    if rule is None:
        fail(f"no replication rule {name}")
    return rule


# -- endpoints
@endpoint_app.command("add")
def endpoint_add(
    name: Annotated[str, typer.Argument(help="A name for the endpoint, e.g. dr-site.")],
    url: Annotated[str, typer.Argument(help="The registry, e.g. https://registry.dr.example")],
    username: Annotated[str | None, typer.Option(help="User name at the endpoint.")] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password or token from stdin."),
    ] = False,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Do not verify its TLS certificate.")
    ] = False,
    json_output: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Add a remote registry; its password is stored encrypted."""
    secret = None
    if password_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
        if not secret:
            fail("--password-stdin: no password on stdin", 2)
    with _opened(config, data_dir) as (_, stores, store):
        endpoint = store.add_endpoint(
            name,
            url,
            username=username,
            secret=secret,
            insecure=insecure,
            created_by=cli_actor(),
        )
        record_change(stores.engine, "replication.endpoint.add", name, url=endpoint.url)
    _show(endpoint.to_dict(), json_output, f"endpoint {name}: {endpoint.url}")


@endpoint_app.command("list")
def endpoint_list(
    json_output: JsonOption = False, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Endpoints (secrets are never shown)."""
    with _opened(config, data_dir) as (_, _stores, store):
        endpoints = store.endpoints()
    if json_output:
        typer.echo(json.dumps([e.to_dict() for e in endpoints], indent=2, default=str))
        return
    for e in endpoints:
        who = f" as {e.username}" if e.username else ""
        secret = " (password set)" if e.has_secret else ""
        typer.echo(f"{e.name:20} {e.url}{who}{secret}{' insecure' if e.insecure else ''}")


@endpoint_app.command("remove")
def endpoint_remove(
    name: Annotated[str, typer.Argument(help="The endpoint's name.")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Remove an endpoint that no rule uses."""
    with _opened(config, data_dir) as (_, stores, store):
        if not store.remove_endpoint(name):
            fail(f"no endpoint {name}")
        record_change(stores.engine, "replication.endpoint.remove", name)
    typer.echo(f"endpoint {name} removed")


# -- rules
@replication_app.command("add")
def add(
    name: RuleArgument,
    endpoint: Annotated[str, typer.Option(help="The endpoint to push to or pull from.")],
    direction: Annotated[str, typer.Option(help="push (to the endpoint) or pull (from it).")],
    source: Annotated[str, typer.Option(help="Repositories: a name or a glob like 'team/*'.")],
    tags: Annotated[str, typer.Option(help="Tags to replicate: a glob like 'v*'.")] = "*",
    dest_prefix: Annotated[
        str | None, typer.Option(help="Put in front of repository names at the destination.")
    ] = None,
    trigger: Annotated[
        str, typer.Option(help="event (on each push; push rules), schedule or manual.")
    ] = "manual",
    every: Annotated[
        int | None, typer.Option(help="Minutes between scheduled runs (trigger schedule).")
    ] = None,
    replicate_deletes: Annotated[
        bool,
        typer.Option("--replicate-deletes", help="Delete at the destination what goes here."),
    ] = False,
    json_output: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Add a replication rule."""
    with _opened(config, data_dir) as (_, stores, store):
        rule = store.add_rule(
            name,
            endpoint=endpoint,
            direction=direction,
            source=source,
            tags=tags,
            dest_prefix=dest_prefix,
            trigger=trigger,
            interval_minutes=every,
            replicate_deletes=replicate_deletes,
            created_by=cli_actor(),
        )
        record_change(
            stores.engine, "replication.rule.add", name, direction=direction, endpoint=endpoint
        )
    arrow = "->" if direction == "push" else "<-"
    _show(rule.to_dict(), json_output, f"rule {name}: {source}:{tags} {arrow} {endpoint}")


@replication_app.command("list")
def list_rules(
    json_output: JsonOption = False, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Rules with their last run."""
    with _opened(config, data_dir) as (_, _stores, store):
        rules = store.rules()
    if json_output:
        typer.echo(json.dumps([r.to_dict() for r in rules], indent=2, default=str))
        return
    for r in rules:
        arrow = "->" if r.direction == "push" else "<-"
        last = f"{r.last_status} {r.last_run_at:%Y-%m-%d %H:%M}" if r.last_run_at else "never run"
        state = "" if r.enabled else " (disabled)"
        typer.echo(
            f"{r.name:20} {r.source}:{r.tags} {arrow} {r.endpoint}"
            f"{'/' + r.dest_prefix if r.dest_prefix else ''} [{r.trigger}] {last}{state}"
        )


@replication_app.command("remove")
def remove(name: RuleArgument, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Remove a rule with its execution log."""
    with _opened(config, data_dir) as (_, stores, store):
        store.remove_rule(_rule_or_fail(store, name).id)
        record_change(stores.engine, "replication.rule.remove", name)
    typer.echo(f"rule {name} removed")


def _describe(x: Any) -> str:
    text = (
        f"execution {x.id} [{x.trigger}] {x.state} (attempt {x.attempts}): {x.images} images, "
        f"{x.manifests} manifests, {x.blobs_copied} blobs copied ({x.bytes} bytes), "
        f"{x.blobs_mounted} mounted, {x.blobs_skipped} skipped, {x.deleted} deleted"
    )
    return text + (f"\n  error: {x.error}" if x.error else "")


@replication_app.command("run")
def run(
    name: RuleArgument,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the end, showing progress.")
    ] = False,
    here: Annotated[
        bool, typer.Option("--here", help="Run it in this process (no server needed).")
    ] = False,
    timeout: Annotated[int, typer.Option(help="Seconds --wait waits at most.")] = 3600,
    json_output: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Queue a run of the rule now; a server's replication worker carries it out."""
    from cargohold.replication.store import FINAL_STATES, SUCCEEDED

    with _opened(config, data_dir) as (settings, stores, store):
        rule = _rule_or_fail(store, name)
        execution = store.enqueue(rule.id, "manual")
        record_change(stores.engine, "replication.rule.run", name, execution=execution.id)
        if here:
            execution = _run_here(settings, stores, execution.id)
        elif wait:
            deadline = time.monotonic() + timeout
            shown = ""
            while execution.state not in FINAL_STATES and time.monotonic() < deadline:
                time.sleep(0.5)
                execution = store.execution(execution.id)
                line = f"{execution.state}: {execution.images} images, {execution.bytes} bytes"
                if line != shown and not json_output:
                    typer.echo(line, err=True)
                    shown = line
    _show(execution.to_dict(), json_output, _describe(execution))
    if (wait or here) and execution.state != SUCCEEDED:
        raise typer.Exit(1)


def _run_here(settings: Settings, stores: Stores, execution_id: int) -> Any:
    from cargohold.replication.worker import LEASE_SECONDS, replicator_for

    replicator = replicator_for(settings, stores)
    claimed = replicator.store.claim(replicator.name, LEASE_SECONDS, execution_id)
    if claimed is None:
        fail("a server's replication worker took the run first; follow it with --wait")
    return replicator.run(claimed) or replicator.store.execution(execution_id)


@replication_app.command("executions")
def executions(
    name: RuleArgument,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    log: Annotated[
        bool, typer.Option("--log", help="With each execution's per-image log.")
    ] = False,
    json_output: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """A rule's executions, newest first."""
    with _opened(config, data_dir) as (_, _stores, store):
        found = store.executions(_rule_or_fail(store, name).id, limit)
        tasks = {x.id: store.tasks(x.id) for x in found} if (log or json_output) else {}
    if json_output:
        documents = [{**x.to_dict(), "tasks": [t.to_dict() for t in tasks[x.id]]} for x in found]
        typer.echo(json.dumps(documents, indent=2, default=str))
        return
    for x in found:
        typer.echo(_describe(x))
        for t in tasks.get(x.id, []):
            problem = f": {t.error}" if t.error else ""
            typer.echo(
                f"  #{t.attempt} {t.action} {t.source} -> {t.destination} {t.state}{problem}"
            )
