"""The cargohold command: help, version, configuration, and serve's error paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import free_port


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cargohold", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_help_lists_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("serve", "version", "config"):
        assert command in result.stdout


def test_serve_help_explains_flags_and_env() -> None:
    result = run("serve", "--help")
    assert result.returncode == 0
    for flag in ("--host", "--port", "--data-dir", "--config", "CARGOHOLD_DATA_DIR"):
        assert flag in result.stdout


def test_version_text_and_json() -> None:
    from cargohold import __version__

    assert run("version").stdout.strip() == f"cargohold {__version__}"
    assert json.loads(run("version", "--json").stdout)["version"] == __version__


def test_config_reads_env_and_file(tmp_path: Path) -> None:
    config = tmp_path / "cargohold.yaml"
    config.write_text("port: 6123\nmax_manifest_size: 2048\n")
    env = {"PATH": "/usr/bin:/bin", "CARGOHOLD_DATA_DIR": str(tmp_path / "d")}
    result = run("config", "--config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    effective = json.loads(result.stdout)
    assert effective["port"] == 6123
    assert effective["max_manifest_size"] == 2048
    assert effective["data_dir"] == str(tmp_path / "d")


def test_invalid_config_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("port: not-a-number\n")
    result = run("serve", "--config", str(config))
    assert result.returncode == 2
    assert "port" in result.stderr and "invalid configuration" in result.stderr


def test_port_in_use_is_reported(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        port = free_port()
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = run(
            "serve", "--port", str(port), "--workers", "1", "--data-dir", str(tmp_path / "d")
        )
    assert result.returncode != 0
    assert "address already in use" in (result.stdout + result.stderr).lower()


@pytest.mark.parametrize("flag", ["--port", "--workers"])
def test_bad_numbers_are_refused(flag: str) -> None:
    result = run("serve", flag, "-5")
    assert result.returncode == 2
