"""`cargohold proxy`: namespaces that are pull-through caches of upstream registries.

`cargohold proxy add hub https://registry-1.docker.io` makes `hub/library/alpine:3` pull
`library/alpine:3` from that upstream on first use and serve it locally afterwards. Changes
are recorded in the audit log as `cli:<OS user>`; running servers see them within seconds.

Exit status: 0 on success, 1 when the registry refuses (a rule exists already, no such
rule), 2 for invalid input.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

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
from cargohold.errors import NameInvalid
from cargohold.stores import Stores

proxy_app = command_group(
    help="Pull-through caches: a namespace (or * for the whole registry) that caches an "
    "upstream registry. First pulls fetch from the upstream, later ones are served locally; "
    "tags are checked again upstream after --tag-ttl seconds."
)

NamespaceArgument = Annotated[
    str, typer.Argument(help="The cached namespace (no '/'), or * for the whole registry.")
]


def register_proxy_commands(app: typer.Typer) -> None:
    app.add_typer(proxy_app, name="proxy")


@contextmanager
def _rules(config: Path | None, data_dir: Path | None) -> Iterator[tuple[Stores, object]]:
    from cargohold.proxy.manage import ProxyRules, RuleInvalid
    from cargohold.proxy.secrets import SecretBox
    from cargohold.proxy.store import ProxyStore

    with opened_stores(config, data_dir, (NameInvalid, RuleInvalid)) as (settings, stores):
        yield stores, ProxyRules(ProxyStore(stores.engine), SecretBox(settings.secrets_key_path))


def _print_rule(rule: dict[str, object]) -> None:
    for key, value in rule.items():
        typer.echo(f"{key + ':':22} {'' if value is None else value}")


@proxy_app.command("add")
def add(
    namespace: NamespaceArgument,
    url: Annotated[str, typer.Argument(help="The upstream, e.g. https://registry-1.docker.io")],
    username: Annotated[str | None, typer.Option(help="Upstream user name.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the upstream password from stdin.")
    ] = False,
    remote_prefix: Annotated[
        str | None,
        typer.Option(help="Put in front of repository paths upstream (e.g. library)."),
    ] = None,
    mirror_of: Annotated[
        str | None,
        typer.Option(help="The host containerd names in ?ns= (default: the URL's host)."),
    ] = None,
    tag_ttl: Annotated[
        int, typer.Option(help="Seconds before a cached tag is checked upstream again.")
    ] = 300,
    mode: Annotated[
        str, typer.Option(help="local-first (cached tags within the TTL) or upstream-first.")
    ] = "local-first",
    stale_on_error: Annotated[
        bool,
        typer.Option(
            "--stale-on-error/--no-stale-on-error",
            help="Serve the cached copy when the upstream is unreachable or fails.",
        ),
    ] = True,
    stale_on_404: Annotated[
        bool,
        typer.Option(
            "--stale-on-404/--no-stale-on-404",
            help="Serve the cached copy when the upstream no longer has the tag.",
        ),
    ] = False,
    json_output: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Make NAMESPACE a pull-through cache of the registry at URL."""
    from cargohold.proxy.manage import rule_dict

    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail("--password-stdin: no password on stdin", 2)
        if not username:
            fail("--password-stdin needs --username", 2)
    with _rules(config, data_dir) as (stores, rules):
        rule = rules.add(  # type: ignore[attr-defined]
            namespace,
            url,
            username=username,
            password=password,
            remote_prefix=remote_prefix,
            mirror_of=mirror_of,
            mode=mode,
            tag_ttl_seconds=tag_ttl,
            serve_stale_on_error=stale_on_error,
            serve_stale_on_404=stale_on_404,
            created_by=cli_actor(),
        )
        record_change(stores.engine, "proxy.add", namespace, upstream=url)
        shown = rule_dict(rule)
    if json_output:
        typer.echo(json.dumps(shown, indent=2))
    else:
        typer.echo(f"{namespace} caches {url}")


@proxy_app.command("list")
def list_rules(
    json_output: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """The pull-through caches."""
    from cargohold.proxy.manage import rule_dict

    with _rules(config, data_dir) as (_stores, rules):
        shown = [rule_dict(rule) for rule in rules.list()]  # type: ignore[attr-defined]
    if json_output:
        typer.echo(json.dumps(shown, indent=2))
        return
    if not shown:
        typer.echo("no pull-through caches")
        return
    for rule in shown:
        prefix = f" (as {rule['remote_prefix']}/...)" if rule["remote_prefix"] else ""
        typer.echo(
            f"{rule['namespace']:20} {rule['upstream_url']}{prefix}  {rule['mode']}, "
            f"tag TTL {rule['tag_ttl_seconds']}s"
        )


@proxy_app.command("show")
def show(
    namespace: NamespaceArgument,
    json_output: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """One pull-through cache (the password is never shown)."""
    from cargohold.proxy.manage import rule_dict

    with _rules(config, data_dir) as (_stores, rules):
        shown = rule_dict(rules.get(namespace))  # type: ignore[attr-defined]
    if json_output:
        typer.echo(json.dumps(shown, indent=2))
    else:
        _print_rule(shown)


@proxy_app.command("remove")
def remove(
    namespace: NamespaceArgument,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Stop caching NAMESPACE; what it cached stays, as local images."""
    with _rules(config, data_dir) as (stores, rules):
        rules.remove(namespace)  # type: ignore[attr-defined]
        record_change(stores.engine, "proxy.remove", namespace)
    typer.echo(f"{namespace} is no longer a pull-through cache")
