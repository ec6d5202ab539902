"""The cargohold command. Every subcommand reads the same configuration as `serve`."""

from __future__ import annotations

import importlib
import sys
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperGroup

from cargohold.cli_common import ConfigOption, DataDirOption, fail, load

if TYPE_CHECKING:
    from typer import _click as click

# The commands defined in other modules: name -> (module, function that registers it).
# A module is imported only when one of its commands runs (or `cargohold --help` lists
# them all): importing every command's module took 0.6 s before any command started
# (SQLAlchemy, the audit log, the scanner...), the larger part of a `cargohold gc`.
# Order: as `cargohold --help` lists them, after serve, version and config.
_ADMIN = ("cargohold.cli_admin", "register_admin_commands")
_TRUST = ("cargohold.cli_trust", "register_trust_commands")
_TAGS = ("cargohold.cli_tags", "register_tag_commands")
_USAGE = ("cargohold.cli_usage", "register_usage_commands")
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "audit": _ADMIN,
    "diff": ("cargohold.cli_diff", "register_diff_command"),
    "fsck": ("cargohold.cli_fsck", "register_fsck_command"),
    "gc": ("cargohold.cli_gc", "register_gc_command"),
    "promote": _TRUST,
    "usage": _USAGE,
    "db": ("cargohold.cli", "register_db_commands"),
    "user": _ADMIN,
    "org": _ADMIN,
    "team": _ADMIN,
    "member": _ADMIN,
    "visibility": _ADMIN,
    "robot": _ADMIN,
    "token": _ADMIN,
    "keys": _TRUST,
    "proxy": ("cargohold.cli_proxy", "register_proxy_commands"),
    "replication": ("cargohold.cli_replication", "register_replication_commands"),
    "retention": ("cargohold.cli_retention", "register_retention_commands"),
    "scan": ("cargohold.cli_scan", "register_scan_commands"),
    "tag": _TAGS,
    "immutable": _TAGS,
    "signatures": _TRUST,
    "gates": _TRUST,
    "quota": _USAGE,
    "vulndb": ("cargohold.cli_vulndb", "register_vulndb_commands"),
    "webhook": ("cargohold.cli_webhooks", "register_webhook_commands"),
}


class LazyCommands(TyperGroup):
    """The top-level group: commands of LAZY_COMMANDS are built when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.commands, *(name for name in LAZY_COMMANDS if name not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            self._load(LAZY_COMMANDS[cmd_name])
        return self.commands.get(cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        from typer._click.exceptions import UsageError

        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            # typer suggests from the commands built so far; suggest from all of them
            if args and "Did you mean" not in exc.message:
                matches = get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    suggestions = ", ".join(f"{m!r}" for m in matches)
                    exc.message = f"{exc.message.rstrip('.')}. Did you mean {suggestions}?"
            raise

    def _load(self, source: tuple[str, str]) -> None:
        module, function = source
        registered = typer.Typer(add_completion=False, rich_markup_mode="markdown")
        getattr(importlib.import_module(module), function)(registered)
        group = typer.main.get_group(registered)
        for name, command in group.commands.items():
            # only the names this table gives to the module
            if LAZY_COMMANDS.get(name) == source and name not in self.commands:
                self.add_command(command, name)


app = typer.Typer(
    cls=LazyCommands,
    help="cargohold: an OCI Distribution v1.1 container registry.\n\n"
    "Settings come from flags, then CARGOHOLD_* environment variables, then the YAML "
    "file given by --config (or CARGOHOLD_CONFIG).",
    no_args_is_help=True,
    add_completion=False,
    # Paragraphs of help texts are written across several source lines; markdown mode
    # joins them instead of breaking the terminal output at the source's line ends.
    rich_markup_mode="markdown",
)


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (env: CARGOHOLD_HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="TCP port, default 5000 (env: CARGOHOLD_PORT).")
    ] = None,
    data_dir: DataDirOption = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes, default: CPU count (env: CARGOHOLD_WORKERS)."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL of the metadata database, e.g. "
            "postgresql+psycopg://user@host/db (env: CARGOHOLD_DATABASE_URL)."
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            help="PEM certificate (chain): serve HTTPS. Needs --tls-key (env: CARGOHOLD_TLS_CERT)."
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(help="PEM private key of --tls-cert (env: CARGOHOLD_TLS_KEY)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Serve the registry's /v2 API (embedded default: SQLite and files under --data-dir).

    With --tls-cert and --tls-key it serves HTTPS (HTTP/1.1); set hsts_seconds
    (CARGOHOLD_HSTS_SECONDS) to send Strict-Transport-Security.
    """
    from cargohold.server import serve as run_server

    settings = load(
        config,
        host=host,
        port=port,
        data_dir=data_dir,
        workers=workers,
        database_url=database_url,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    from cargohold.setup import UnsafeStart

    try:
        run_server(settings)
    except UnsafeStart as exc:
        fail(f"refusing to start: {exc}", 2)
    except OSError as exc:
        fail(f"cannot serve: {exc}", 1)


@app.command()
def version(
    json_output: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Print the cargohold version."""
    from cargohold import __version__

    if json_output:
        import json

        typer.echo(json.dumps({"version": __version__, "python": sys.version.split()[0]}))
    else:
        typer.echo(f"cargohold {__version__}")


@app.command("config")
def show_config(
    reference: Annotated[
        bool, typer.Option("--reference", help="Print the reference of every setting (Markdown).")
    ] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Print the effective configuration as JSON (what `serve` would use)."""
    if reference:
        from cargohold.config import reference_markdown

        typer.echo(reference_markdown(), nl=False)
        return
    typer.echo(load(config, data_dir=data_dir).model_dump_json(indent=2))


db_app = typer.Typer(help="The metadata database schema.", no_args_is_help=True)


def register_db_commands(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Apply the schema migrations (PostgreSQL: run once before starting the servers)."""
    from cargohold.storage.meta import schema
    from cargohold.storage.meta.sqlbase import create_sql_engine

    settings = load(config, data_dir=data_dir)
    if settings.resolved_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)  # the embedded database's home
    engine = create_sql_engine(settings.resolved_database_url)
    try:
        before = schema.current_revision(engine)
        schema.upgrade(engine)
        after = schema.current_revision(engine)
    finally:
        engine.dispose()
    if before == after:
        typer.echo(f"the schema is current ({after})")
    else:
        typer.echo(f"upgraded the schema from {before or 'nothing'} to {after}")


@db_app.command("status")
def db_status(
    json_output: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Show the schema revision of the database and the one this cargohold needs."""
    import json

    from cargohold.storage.meta import schema
    from cargohold.storage.meta.sqlbase import create_sql_engine

    settings = load(config, data_dir=data_dir)
    engine = create_sql_engine(settings.resolved_database_url)
    try:
        current = schema.current_revision(engine)
    finally:
        engine.dispose()
    head = schema.head_revision()
    if json_output:
        typer.echo(json.dumps({"current": current, "head": head, "current_ok": current == head}))
    else:
        state = "current" if current == head else "OUTDATED: run `cargohold db upgrade`"
        typer.echo(f"schema {current or 'none'} (needs {head}): {state}")


def main() -> None:
    app()
