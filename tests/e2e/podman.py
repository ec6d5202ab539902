"""Run the real podman binary for the end-to-end tests, with a private image store.

Every command gets its own storage root, run root, libpod tmpdir and registries.conf under the
test's temporary directory (``vfs`` storage driver, no cgroups, no events), so that the tests
never read or change the machine's global podman storage. Only ``pull``/``push``/``tag``/
``rmi``/``inspect``/``manifest`` are used: no container is ever run.

podman runs with ``--log-level=debug`` so that a failure shows the HTTP requests it made (the
same ``GET http://...`` lines that :class:`skopeo.Result` picks out).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from .skopeo import Result, run_tool

#: Seconds one podman command may take before the test fails.
TIMEOUT = 180

MISSING = (
    "podman is not installed (looked for `podman` on PATH): the end-to-end tests need the real "
    "client. Install it (e.g. `apt-get install podman`); CI does."
)

#: registries.conf: no short-name search, no mirrors; TLS is turned off per command instead.
REGISTRIES_CONF = "unqualified-search-registries = []\nshort-name-mode = \"disabled\"\n"


def find_podman() -> str:
    """The path of the podman binary; fails the calling test (never skips) if there is none."""
    binary = shutil.which("podman")
    if binary is None:
        pytest.fail(MISSING, pytrace=False)
    return binary


class Podman:
    """Runs ``podman --log-level=debug --root ... <command>`` against a private store."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        for sub in ("root", "libpod", "networks", "tmp"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        # podman refuses a run root longer than 50 characters (it holds sockets): keep it short.
        self.runroot = Path(tempfile.mkdtemp(prefix="cargohold-podman-"))
        (workdir / "registries.conf").write_text(REGISTRIES_CONF)
        self.env = {
            **os.environ,
            "CONTAINERS_REGISTRIES_CONF": str(workdir / "registries.conf"),
            "TMPDIR": str(workdir / "tmp"),
        }

    @property
    def global_options(self) -> list[str]:
        return [
            "--log-level=debug",
            "--root",
            str(self.workdir / "root"),
            "--runroot",
            str(self.runroot),
            "--tmpdir",
            str(self.workdir / "libpod"),
            "--network-config-dir",
            str(self.workdir / "networks"),
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
        ]

    def cleanup(self) -> None:
        shutil.rmtree(self.runroot, ignore_errors=True)

    def run(self, *args: str | Path, check: bool = True, timeout: float = TIMEOUT) -> Result:
        cmd = [self.binary, *self.global_options, *map(str, args)]
        return run_tool("podman", cmd, check=check, timeout=timeout, env=self.env)

    def pull(self, ref: str, *options: str) -> str:
        """``podman pull -q``; returns the image ID podman printed (the config digest's hex)."""
        return self.run("pull", "--quiet", *options, ref).text.strip()

    def push(self, source: str, dest: str, digest_file: Path, *options: str) -> str:
        """``podman push`` to a registry; returns the manifest digest podman wrote."""
        self.run("push", "--tls-verify=false", "--digestfile", digest_file, *options, source, dest)
        return digest_file.read_text().strip()

    def inspect(self, ref: str) -> dict[str, Any]:
        (info,) = self.run("image", "inspect", ref).json()
        return dict(info)

    def image_ids(self) -> list[str]:
        out = self.run("images", "--all", "--no-trunc", "--format", "json").json()
        return sorted(str(image["Id"]) for image in out or [])

    def manifest_inspect(self, name: str) -> dict[str, Any]:
        return dict(json.loads(self.run("manifest", "inspect", name).stdout))
