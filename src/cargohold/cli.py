"""The cargohold command. Every subcommand reads the same configuration as `serve`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cargohold import __version__
from cargohold.cli_admin import register_admin_commands
from cargohold.cli_common import ConfigOption, DataDirOption, fail, load
from cargohold.cli_diff import register_diff_command
from cargohold.cli_fsck import register_fsck_command
from cargohold.cli_gc import register_gc_command
from cargohold.cli_proxy import register_proxy_commands
from cargohold.cli_replication import register_replication_commands
from cargohold.cli_retention import register_retention_commands
from cargohold.cli_scan import register_scan_commands
from cargohold.cli_tags import register_tag_commands
from cargohold.cli_trust import register_trust_commands
from cargohold.cli_usage import register_usage_commands
from cargohold.cli_vulndb import register_vulndb_commands
from cargohold.cli_webhooks import register_webhook_commands

app = typer.Typer(
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


register_admin_commands(app)
register_diff_command(app)
register_fsck_command(app)
register_gc_command(app)
register_proxy_commands(app)
register_replication_commands(app)
register_retention_commands(app)
register_scan_commands(app)
register_tag_commands(app)
register_trust_commands(app)
register_usage_commands(app)
register_vulndb_commands(app)
register_webhook_commands(app)


def main() -> None:
    app()
