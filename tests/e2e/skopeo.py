"""Run the real skopeo binary for the end-to-end tests.

skopeo always runs with ``--debug`` so that a failure shows the HTTP requests it made (lines
such as ``GET http://127.0.0.1:PORT/v2/...``) next to the error it reported.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: Seconds one skopeo command may take before the test fails.
TIMEOUT = 180

MISSING = (
    "skopeo is not installed (looked for `skopeo` on PATH): the end-to-end tests need the real "
    "client. Install it (e.g. `apt-get install skopeo`); CI does."
)

_REQUEST_LINE = re.compile(r"\b(GET|HEAD|POST|PUT|PATCH|DELETE) https?://[^\s\"]+")


def find_skopeo() -> str:
    """The path of the skopeo binary; fails the calling test (never skips) if there is none."""
    binary = shutil.which("skopeo")
    if binary is None:
        pytest.fail(MISSING, pytrace=False)
    return binary


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout.decode()

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def requests(self) -> list[str]:
        """The HTTP requests skopeo logged, e.g. ``"POST http://host/v2/a/blobs/uploads/"``."""
        return [m.group(0) for m in _REQUEST_LINE.finditer(self.stderr)]

    def describe(self) -> str:
        lines = self.stderr.splitlines()
        errors = [ln for ln in lines if "level=fatal" in ln or "level=error" in ln]
        return "\n".join(
            [
                f"$ {shlex.join(self.args)}",
                f"exit status {self.returncode}",
                "--- stdout (first 2000 chars) ---",
                self.stdout.decode(errors="replace")[:2000],
                "--- HTTP requests (last 40) ---",
                *self.requests[-40:],
                "--- stderr (last 25 lines) ---",
                *lines[-25:],
                "--- errors ---",
                *errors,
            ]
        )


class Skopeo:
    """Runs ``skopeo --debug --insecure-policy ...`` with a timeout."""

    def __init__(self, binary: str, tmpdir: Path) -> None:
        self.binary = binary
        self.tmpdir = tmpdir

    def run(self, *args: str | Path, check: bool = True, timeout: float = TIMEOUT) -> Result:
        cmd = [
            self.binary,
            "--debug",
            "--insecure-policy",
            "--tmpdir",
            str(self.tmpdir),
            *map(str, args),
        ]
        return run_tool("skopeo", cmd, check=check, timeout=timeout)

    def copy(self, src: str, dest: str, *options: str | Path, check: bool = True) -> Result:
        return self.run("copy", *options, src, dest, check=check)

    def inspect(self, ref: str, *options: str | Path, check: bool = True) -> Result:
        return self.run("inspect", *options, ref, check=check)


def run_tool(
    tool: str,
    cmd: list[str],
    check: bool,
    timeout: float,
    env: dict[str, str] | None = None,
) -> Result:
    """Run a client command; a timeout or (with check) a failure fails the test verbosely."""
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False, env=env)
    except subprocess.TimeoutExpired as exc:
        stderr = (exc.stderr or b"").decode(errors="replace")
        pytest.fail(
            f"$ {shlex.join(cmd)}\ntimed out after {timeout}s\n"
            + "\n".join(stderr.splitlines()[-40:]),
            pytrace=False,
        )
    result = Result(cmd, proc.returncode, proc.stdout, proc.stderr.decode(errors="replace"))
    if check and result.returncode != 0:
        pytest.fail(f"{tool} failed:\n{result.describe()}", pytrace=False)
    return result
