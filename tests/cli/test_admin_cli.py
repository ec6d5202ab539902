"""The management commands: what they change, what they list, and how they fail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    data_dir = str(tmp_path / "data")

    def run(*args: str, stdin: str | None = None, ok: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "cargohold", *args, "--data-dir", data_dir],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if ok:
            assert result.returncode == 0, result.stderr
        return result

    return run


def listed(cli, *args: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    return json.loads(cli(*args, "--json").stdout)  # type: ignore[no-any-return]


def test_keys_rotate_adds_a_signing_key(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("user", "list")  # the first run creates the first signing key
    keys = tmp_path / "data" / "keys"
    before = set(keys.iterdir())
    said = cli("keys", "rotate").stdout
    added = set(keys.iterdir()) - before
    assert len(added) == 1, said
    assert "new signing key" in said


def test_manage_and_list(cli) -> None:  # type: ignore[no-untyped-def]
    cli("user", "add", "bob", "--password-stdin", stdin="password-of-bob\n")
    cli("org", "add", "acme")
    cli("member", "add", "acme", "--user", "bob", "--role", "writer")
    cli("member", "add", "acme", "--user", "bob", "--role", "admin", "--repository", "acme/web")
    cli("team", "add", "acme", "devs")
    cli("team", "member", "acme", "devs", "bob")
    cli("visibility", "set", "acme", "public")
    robot = json.loads(cli("robot", "add", "acme", "ci", "--actions", "pull,push", "--json").stdout)
    token = json.loads(
        cli("token", "add", "bob", "laptop", "--expires-in-days", "7", "--json").stdout
    )
    assert robot["name"] == "robot$acme+ci" and len(robot["secret"]) >= 40
    assert token["token"].startswith("chp_")

    assert {"name": "acme", "kind": "org", "visibility": "public"} in listed(cli, "org", "list")
    grants = listed(cli, "member", "list", "acme")
    assert sorted((g["role"], g["repository"]) for g in grants) == [
        ("admin", "acme/web"),
        ("writer", ""),
    ]
    assert listed(cli, "team", "list", "acme") == [{"name": "devs", "members": ["bob"]}]
    [robot_row] = listed(cli, "robot", "list", "acme")
    assert robot_row["actions"] == ["pull", "push"] and robot_row["revoked"] is False
    assert "secret" not in robot_row and "secret_hash" not in robot_row
    [token_row] = listed(cli, "token", "list", "bob")
    assert token_row["name"] == "laptop" and token_row["expires_at"] is not None
    cli("robot", "revoke", "acme", "ci")
    cli("token", "revoke", "bob", "laptop")
    assert listed(cli, "robot", "list", "acme")[0]["revoked"] is True
    assert listed(cli, "token", "list", "bob")[0]["revoked"] is True
    actions = [e["action"] for e in listed(cli, "audit")]
    assert {"user_add", "org_add", "grant", "robot_add", "robot_revoke", "token_revoke"} <= set(
        actions
    )
    table = cli("org", "list").stdout  # the human form: a table
    assert any(line.split()[:3] == ["acme", "org", "public"] for line in table.splitlines())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("member", "add", "ghost", "--user", "bob", "--role", "reader"), "no namespace"),
        (("member", "add", "acme", "--user", "ghost", "--role", "reader"), "no user"),
        (("member", "add", "acme", "--role", "reader"), "exactly one of --user or --team"),
        (("org", "add", "Bad Name"), "invalid name"),
        (("robot", "add", "acme", "ci", "--actions", "fly"), "unknown action"),
        (("visibility", "set", "acme", "secret"), "public, private or inherit"),
        (("token", "revoke", "bob", "nothing"), "no token"),
    ],
)
def test_errors_say_what_to_do(cli, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    cli("user", "add", "bob", "--password-stdin", stdin="password-of-bob\n")
    cli("org", "add", "acme")
    result = cli(*args, ok=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_short_password_is_refused(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("user", "add", "amy", "--password-stdin", stdin="short\n", ok=False)
    assert result.returncode == 2 and "at least 8 characters" in result.stderr
