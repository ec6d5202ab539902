"""Each command imports what it needs: `cargohold gc --help` loads neither the other
commands' modules nor SQLAlchemy or the settings, while `cargohold --help` still lists
every command, and each of them still answers."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from cargohold.cli import LAZY_COMMANDS, app

# Runs the command in-process (as `python -m cargohold` does), then prints what it loaded.
PROBE = """
import sys
sys.argv = ["cargohold", *{args!r}]
from cargohold.cli import main
try:
    main()
except SystemExit:
    pass
print("MODULES", " ".join(sorted(sys.modules)))
"""


def loaded_by(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=list(args))],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("MODULES "))
    return set(line.split()[1:])


def test_gc_help_loads_only_the_gc_command() -> None:
    modules = loaded_by("gc", "--help")
    assert "cargohold.cli_gc" in modules
    other_commands = {module for module, _ in LAZY_COMMANDS.values()} - {
        "cargohold.cli_gc",
        "cargohold.cli",  # `db` is defined there
    }
    assert not modules & other_commands
    assert not {"sqlalchemy", "alembic", "cargohold.config", "cargohold.core"} & modules


def test_every_command_is_listed_and_answers_help() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "cargohold", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert listed.returncode == 0, listed.stderr
    names = [
        line.split()[1]
        for line in listed.stdout.splitlines()
        if line.startswith("│ ") and len(line.split()) > 2
    ]
    for name in ("serve", "version", "config", *LAZY_COMMANDS):
        assert name in names, name
    # every name of the table is registered by the module it names
    runner = CliRunner()
    for name in LAZY_COMMANDS:
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output, name


def test_version_loads_no_command_module() -> None:
    modules = loaded_by("version")
    assert not modules & {module for module, _ in LAZY_COMMANDS.values()} - {"cargohold.cli"}


def test_a_mistyped_command_still_gets_a_suggestion() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", "gcc"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "Did you mean 'gc'?" in result.stderr
