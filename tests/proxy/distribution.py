"""CNCF Distribution (Debian's docker-registry) on loopback, with htpasswd (Basic) auth."""

from __future__ import annotations

import shutil
import subprocess
import time
import warnings
from pathlib import Path

import httpx
import pytest
from tests.conftest import free_port

BINARY = "docker-registry"


def bcrypt_hash(password: str) -> str:
    """bcrypt through the C library (libxcrypt), for Distribution's htpasswd file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:  # Python 3.13 dropped it
            pytest.fail("hashing the htpasswd file needs Python's crypt module", pytrace=False)
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


class Distribution:
    def __init__(self, workdir: Path, user: str, password: str) -> None:
        binary = shutil.which(BINARY)
        if binary is None:
            pytest.fail(
                "docker-registry (CNCF Distribution) is missing: apt-get install "
                "docker-registry; CI does",
                pytrace=False,
            )
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.user, self.password = user, password
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "htpasswd").write_text(f"{user}:{bcrypt_hash(password)}\n")
        config = workdir / "config.yml"
        config.write_text(
            f"""version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {workdir / "root"}
  delete:
    enabled: true
http:
  addr: {self.host}
auth:
  htpasswd:
    realm: distribution
    path: {workdir / "htpasswd"}
"""
        )
        self.log_path = workdir / "distribution.log"
        self._log = self.log_path.open("wb")
        self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [binary, "serve", str(config)], stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                if httpx.get(f"{self.url}/v2/", timeout=1).status_code in (200, 401):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"docker-registry not ready: {self.log_path.read_text()}")

    @property
    def creds(self) -> str:
        return f"{self.user}:{self.password}"

    def blob_gets(self, digest: str) -> int:
        """Blob GETs in Distribution's access log (one line per request)."""
        text = self.log_path.read_text(errors="replace")
        return sum(
            1 for line in text.splitlines() if '"GET /v2/' in line and f"/blobs/{digest}" in line
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
            self._log.close()
