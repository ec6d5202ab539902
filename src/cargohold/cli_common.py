"""Options and helpers shared by every cargohold command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from cargohold.config import ConfigError, Settings, load_settings

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


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def load(config: Path | None, **overrides: object) -> Settings:
    """The settings every command uses: flags, then env, then the config file."""
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        fail(str(exc), 2)
