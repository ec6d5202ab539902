"""The cargohold command. Every subcommand reads the same configuration as `serve`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cargohold import __version__
from cargohold.config import ConfigError, Settings, load_settings

app = typer.Typer(
    help="cargohold: an OCI Distribution v1.1 container registry.\n\n"
    "Settings come from flags, then CARGOHOLD_* environment variables, then the YAML "
    "file given by --config (or CARGOHOLD_CONFIG).",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="YAML file with settings (env: CARGOHOLD_CONFIG).", dir_okay=False
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder for the database and blobs (env: CARGOHOLD_DATA_DIR).",
        file_okay=False,
    ),
]


def _settings(config: Path | None, **overrides: object) -> Settings:
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


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
    config: ConfigOption = None,
) -> None:
    """Serve the registry's /v2 API (embedded default: SQLite and files under --data-dir)."""
    from cargohold.server import serve as run_server

    settings = _settings(config, host=host, port=port, data_dir=data_dir, workers=workers)
    try:
        run_server(settings)
    except OSError as exc:
        typer.secho(f"error: cannot serve: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None


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
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Print the effective configuration as JSON (what `serve` would use)."""
    typer.echo(_settings(config, data_dir=data_dir).model_dump_json(indent=2))


def main() -> None:
    app()
