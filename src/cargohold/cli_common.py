"""Options and helpers shared by every cargohold command."""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from cargohold.errors import DigestInvalid, NameInvalid, RegistryError, TagInvalid

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from cargohold.config import Settings
    from cargohold.stores import Stores

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

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def load(config: Path | None, **overrides: object) -> Settings:
    """The settings every command uses: flags, then env, then the config file."""
    # imported here: pydantic-settings takes a tenth of a second, which `--help` never needs
    from cargohold.config import ConfigError, load_settings

    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        fail(str(exc), 2)


def cli_actor() -> str:
    """Who a command's changes are attributed to, in tag history and the audit log."""
    return f"cli:{getpass.getuser()}"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# Core errors caused by what was typed: exit status 2, like a usage error.
INPUT_ERRORS: tuple[type[RegistryError], ...] = (NameInvalid, TagInvalid, DigestInvalid)


def fail_with(exc: RegistryError, input_errors: tuple[type[RegistryError], ...] = ()) -> NoReturn:
    fail(exc.message, 2 if isinstance(exc, INPUT_ERRORS + input_errors) else 1)


@contextmanager
def opened_stores(
    config: Path | None,
    data_dir: Path | None,
    input_errors: tuple[type[RegistryError], ...] = (),
) -> Iterator[tuple[Settings, Stores]]:
    """The settings and the stores they name, as `serve` opens them (migrating the
    embedded database, refusing an outdated shared one); a core error raised inside
    becomes one line on stderr and an exit status, never a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from cargohold.setup import UnsafeStart, prepare_storage
    from cargohold.stores import open_stores

    settings = load(config, data_dir=data_dir)
    try:
        prepare_storage(settings)
        stores = open_stores(settings)
    except UnsafeStart as exc:
        fail(str(exc), 2)
    except (SQLAlchemyError, OSError, ValueError) as exc:
        fail(f"cannot open the registry's stores: {first_line(exc)}")
    try:
        yield settings, stores
    except RegistryError as exc:
        fail_with(exc, input_errors)
    except SQLAlchemyError as exc:
        fail(f"metadata database error: {first_line(exc)}")
    finally:
        stores.close()


def record_change(engine: Engine, action: str, target: str, **detail: object) -> None:
    """A change made from the command line, in the audit log like the server's."""
    from cargohold.auth.audit import AuditEvent, AuditStore

    fields = {key: value for key, value in detail.items() if value is not None}
    AuditStore(engine).add(
        [AuditEvent(actor=cli_actor(), action=action, target=target, detail=fields or None)]
    )


def command_group(help: str, no_args_is_help: bool = True) -> typer.Typer:
    """A group of subcommands, set up like every other: help paragraphs are written
    across several source lines, and markdown mode reflows them to the terminal."""
    return typer.Typer(help=help, no_args_is_help=no_args_is_help, rich_markup_mode="markdown")


@contextmanager
def phased_progress(
    labels: dict[str, str], enabled: bool, width: int = 28
) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar per phase of a long command (gc, fsck) on stderr, shown only when
    ``enabled`` and stderr is a terminal; yields progress(phase, done, total)."""
    if not enabled:  # --json: not even rich's import (a share of a short gc's time)
        yield lambda phase, done, total: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    with Progress(
        TextColumn(f"{{task.description:<{width}}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(labels.get(phase, phase), total=total or 1)
            bar.update(tasks[phase], completed=done if total else 1, total=total or 1)

        yield progress
