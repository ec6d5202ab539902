"""Real clients against access control: skopeo (--creds, --src-creds/--dest-creds, login) and
the docker CLI (login with --password-stdin, manifest inspect with the stored credential,
logout). No engine is needed. A missing client fails the test; it never skips.

Each client runs with its own auth file / DOCKER_CONFIG, so no credential leaks in from the
machine or from another test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.e2e.oci_layout import Layout, build_image_layout, compare_layouts, read_layout
from tests.e2e.skopeo import Result, find_skopeo, run_tool

from .conftest import World

TIMEOUT = 120
DOCKER_MISSING = (
    "the docker CLI is not installed (looked for `docker` on PATH): these tests need the real "
    "client (no engine). Install it (e.g. `apt-get install docker.io`); CI does."
)


class Skopeo:
    """skopeo with a private auth file (REGISTRY_AUTH_FILE) and temp dir."""

    def __init__(self, tmp: Path) -> None:
        self.binary = find_skopeo()
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.authfile = tmp / "auth.json"
        self.env = {**os.environ, "REGISTRY_AUTH_FILE": str(self.authfile)}

    def run(self, *args: str, check: bool = True, stdin: str | None = None) -> Result:
        cmd = [self.binary, "--debug", "--insecure-policy", "--tmpdir", str(self.tmp), *args]
        if stdin is None:
            return run_tool("skopeo", cmd, check=check, timeout=TIMEOUT, env=self.env)
        return run_with_stdin("skopeo", cmd, stdin, check, self.env)


def run_with_stdin(tool: str, cmd: list[str], stdin: str, check: bool,
                   env: dict[str, str]) -> Result:
    try:
        proc = subprocess.run(cmd, input=stdin.encode(), capture_output=True, timeout=TIMEOUT,
                              check=False, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"$ {' '.join(cmd)}\ntimed out after {TIMEOUT}s", pytrace=False)
    result = Result(cmd, proc.returncode, proc.stdout, proc.stderr.decode(errors="replace"))
    if check and result.returncode != 0:
        pytest.fail(f"{tool} failed:\n{result.describe()}", pytrace=False)
    return result


class Docker:
    """The docker CLI with a private DOCKER_CONFIG."""

    def __init__(self, config_dir: Path) -> None:
        binary = shutil.which("docker")
        if binary is None:
            pytest.fail(DOCKER_MISSING, pytrace=False)
        self.binary = binary
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "config.json").write_text("{}")
        self.env = {**os.environ, "DOCKER_CONFIG": str(config_dir)}

    def run(self, *args: str, check: bool = True, stdin: str = "") -> Result:
        return run_with_stdin("docker", [self.binary, *args], stdin, check, self.env)


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    return Skopeo(tmp_path / "skopeo")


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    return build_image_layout(tmp_path_factory.mktemp("layout") / "img", "1.0",
                              seed="auth-clients", layers=2)


def must_fail(result: Result) -> None:
    assert result.returncode != 0, f"expected a failure:\n{result.describe()}"


def test_skopeo_creds_push_and_pull_private(world: World, skopeo: Skopeo, layout: Layout,
                                            tmp_path: Path) -> None:
    writer, reader = world.users["writer"], world.users["reader"]
    ref = f"docker://{world.realm.host}/privco/skopeo-creds:1.0"
    skopeo.run("copy", "--dest-tls-verify=false", "--dest-creds", writer.creds,
               layout.reference, ref)
    info = skopeo.run("inspect", "--tls-verify=false", "--creds", reader.creds, ref).json()
    assert info["Digest"] == layout.digest

    must_fail(skopeo.run("inspect", "--tls-verify=false", "--creds", f"{reader.username}:wrong",
                         ref, check=False))
    must_fail(skopeo.run("inspect", "--tls-verify=false", ref, check=False))
    outsider = world.users["outsider"]
    must_fail(skopeo.run("inspect", "--tls-verify=false", "--creds", outsider.creds, ref,
                         check=False))
    must_fail(skopeo.run("copy", "--dest-tls-verify=false", "--dest-creds", reader.creds,
                         layout.reference, ref.replace("skopeo-creds", "skopeo-reader"),
                         check=False))

    out = tmp_path / "pulled"
    skopeo.run("copy", "--src-tls-verify=false", "--src-creds", reader.creds, ref,
               f"oci:{out}:1.0")
    assert compare_layouts(layout, read_layout(out, "1.0")) == []


def test_skopeo_copy_between_repositories_with_src_and_dest_creds(
    world: World, skopeo: Skopeo, layout: Layout
) -> None:
    host, writer = world.realm.host, world.users["writer"]
    src = f"docker://{host}/privco/skopeo-src:1.0"
    skopeo.run("copy", "--dest-tls-verify=false", "--dest-creds", writer.creds,
               layout.reference, src)
    robot = world.robots[("pubco", "push")]
    dest = f"docker://{host}/pubco/skopeo-dest:1.0"
    skopeo.run("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
               "--src-creds", writer.creds, "--dest-creds", robot.creds, src, dest)
    info = skopeo.run("inspect", "--tls-verify=false", dest).json()  # public: anonymous pull
    assert info["Digest"] == layout.digest
    puller = world.robots[("pubco", "pull")]
    must_fail(skopeo.run("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                         "--src-creds", writer.creds, "--dest-creds", puller.creds, src,
                         dest.replace("skopeo-dest", "skopeo-nope"), check=False))


def test_skopeo_login_and_logout(world: World, skopeo: Skopeo, layout: Layout) -> None:
    host, writer = world.realm.host, world.users["writer"]
    ref = f"docker://{host}/privco/skopeo-login:1.0"
    must_fail(skopeo.run("login", "--tls-verify=false", "-u", "writer", "--password-stdin",
                         host, stdin="wrong", check=False))
    result = skopeo.run("login", "--tls-verify=false", "-u", "writer", "--password-stdin",
                        host, stdin=str(writer.password))
    assert "Login Succeeded" in result.text + result.stderr, result.describe()
    assert host in json.loads(skopeo.authfile.read_text())["auths"]
    skopeo.run("copy", "--dest-tls-verify=false", layout.reference, ref)
    assert skopeo.run("inspect", "--tls-verify=false", ref).json()["Digest"] == layout.digest
    skopeo.run("logout", host)
    must_fail(skopeo.run("inspect", "--tls-verify=false", ref, check=False))


def test_docker_login_manifest_inspect_logout(world: World, skopeo: Skopeo, layout: Layout,
                                              tmp_path: Path) -> None:
    host, writer, reader = world.realm.host, world.users["writer"], world.users["reader"]
    image = f"{host}/privco/docker-login:1.0"
    skopeo.run("copy", "--dest-tls-verify=false", "--dest-creds", writer.creds,
               layout.reference, f"docker://{image}")
    docker = Docker(tmp_path / "docker-config")

    bad = docker.run("login", host, "-u", "reader", "--password-stdin", stdin="wrong",
                     check=False)
    must_fail(bad)
    must_fail(docker.run("manifest", "inspect", "--insecure", image, check=False))

    good = docker.run("login", host, "-u", "reader", "--password-stdin",
                      stdin=str(reader.password))
    assert "Login Succeeded" in good.text, good.describe()
    manifest = docker.run("manifest", "inspect", "--insecure", image).json()
    assert manifest == json.loads(layout.root.data)

    docker.run("logout", host)
    must_fail(docker.run("manifest", "inspect", "--insecure", image, check=False))


def test_docker_login_with_robot_and_personal_access_token(world: World, tmp_path: Path) -> None:
    host = world.realm.host
    for i, principal in enumerate((world.robots[("privco", "pull")], world.pat)):
        docker = Docker(tmp_path / f"docker-config-{i}")
        result = docker.run("login", host, "-u", str(principal.username), "--password-stdin",
                            stdin=str(principal.password))
        assert "Login Succeeded" in result.text, result.describe()
        image = f"{host}/privco/app:v1"
        manifest = docker.run("manifest", "inspect", "--insecure", image).json()
        assert manifest == world.images["privco"].manifest
