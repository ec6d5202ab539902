"""Commands that manage access: users, organizations, teams, members, robots, tokens, keys.

They act on the same data as `serve` (same settings) and take effect in a running server
within a few seconds.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from cargohold.auth.audit import AuditEvent, AuditStore
from cargohold.auth.credentials import create_robot, create_token
from cargohold.auth.principal import robot_username
from cargohold.auth.roles import Role, parse_actions
from cargohold.auth.secrets import hash_password
from cargohold.auth.store import AuthError, AuthStore
from cargohold.cli_common import ConfigOption, DataDirOption, JsonOption, command_group, fail, load
from cargohold.errors import NameInvalid
from cargohold.reference import validate_name
from cargohold.storage.meta.sqlbase import create_sql_engine

user_app = command_group(help="Users: people who log in.")
org_app = command_group(help="Organizations: shared namespaces.")
team_app = command_group(help="Teams: groups of users in an organization.")
member_app = command_group(help="Roles of users and teams in a namespace.")
visibility_app = command_group(
    help="Public or private namespaces and repositories.", no_args_is_help=False
)
robot_app = command_group(help="Robot accounts for automation (CI, deploys).")
token_app = command_group(help="Personal access tokens, usable as passwords.")

ExpiresOption = Annotated[
    int | None, typer.Option("--expires-in-days", min=1, help="Expire after N days.")
]


def register_admin_commands(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
    app.add_typer(org_app, name="org")
    app.add_typer(team_app, name="team")
    app.add_typer(member_app, name="member")
    app.add_typer(visibility_app, name="visibility")
    app.add_typer(robot_app, name="robot")
    app.add_typer(token_app, name="token")
    register_audit_command(app)


@contextmanager
def _store(config: Path | None, data_dir: Path | None) -> Iterator[AuthStore]:
    from cargohold.setup import UnsafeStart, prepare_storage

    settings = load(config, data_dir=data_dir)
    try:
        prepare_storage(settings)
    except UnsafeStart as exc:
        fail(str(exc), 2)
    store = AuthStore(create_sql_engine(settings.resolved_database_url))
    try:
        yield store
    except AuthError as exc:
        fail(str(exc))
    finally:
        store.close()


def _record(store: AuthStore, action: str, target: str, **detail: object) -> None:
    """Management changes go straight to the audit log, attributed to the OS user."""
    actor = f"cli:{getpass.getuser()}"
    AuditStore(store.engine).add(
        [AuditEvent(actor=actor, action=action, target=target, detail=detail or None)]
    )


def _name(value: str, what: str) -> str:
    try:
        validate_name(value)
    except NameInvalid:
        fail(f"invalid {what} {value!r}: use lowercase letters, digits, '.', '_' and '-'", 2)
    return value


def _namespace_name(value: str) -> str:
    if "/" in value:
        fail(f"{value!r} is a repository; a namespace is one path component", 2)
    return _name(value, "name")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        fail("the password must have at least 8 characters", 2)
    return password


@user_app.command("add")
def user_add(
    name: str,
    admin: Annotated[bool, typer.Option("--admin", help="A registry-wide admin.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Add a user (and their personal namespace, private). The password is prompted."""
    _namespace_name(name)
    password = _read_password(password_stdin)
    with _store(config, data_dir) as store:
        store.add_user(name, hash_password(password), admin)
        _record(store, "user_add", name, admin=admin)
    typer.echo(f"added {'admin ' if admin else ''}user {name}")


@user_app.command("password")
def user_password(
    name: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Set a user's password."""
    password = _read_password(password_stdin)
    with _store(config, data_dir) as store:
        store.set_password(name, hash_password(password))
        _record(store, "password_change", name)
    typer.echo(f"password of {name} changed")


@user_app.command("list")
def user_list(
    json_output: JsonOption = False, data_dir: DataDirOption = None, config: ConfigOption = None
) -> None:
    """List users."""
    with _store(config, data_dir) as store:
        users = store.list_users()
    rows = [{"name": u.name, "admin": u.is_admin, "disabled": u.disabled} for u in users]
    if json_output:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        typer.echo(f"{row['name']}{'  (admin)' if row['admin'] else ''}")


@org_app.command("add")
def org_add(
    name: str,
    public: Annotated[bool, typer.Option("--public", help="Anyone may pull.")] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Add an organization namespace (private unless --public)."""
    _namespace_name(name)
    with _store(config, data_dir) as store:
        store.add_org(name, public)
        _record(store, "org_add", name, public=public)
    typer.echo(f"added organization {name} ({'public' if public else 'private'})")


@team_app.command("add")
def team_add(
    org: str, team: str, data_dir: DataDirOption = None, config: ConfigOption = None
) -> None:
    """Add a team to an organization."""
    with _store(config, data_dir) as store:
        store.add_team(org, team)
        _record(store, "team_add", org, team=team)
    typer.echo(f"added team {team} to {org}")


@team_app.command("member")
def team_member(
    org: str, team: str, user: str, data_dir: DataDirOption = None, config: ConfigOption = None
) -> None:
    """Add a user to a team."""
    with _store(config, data_dir) as store:
        store.add_team_member(org, team, user)
        _record(store, "team_member_add", org, team=team, user=user)
    typer.echo(f"added {user} to team {team} of {org}")


@member_app.command("add")
def member_add(
    namespace: str,
    role: Annotated[Role, typer.Option("--role", help="reader, writer, maintainer or admin.")],
    user: Annotated[str | None, typer.Option("--user")] = None,
    team: Annotated[str | None, typer.Option("--team")] = None,
    repository: Annotated[
        str | None, typer.Option("--repository", help="Only this repository (ns/repo).")
    ] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Give a user or a team a role in a namespace, or in one of its repositories."""
    if (user is None) == (team is None):
        fail("give exactly one of --user or --team", 2)
    if repository is not None:
        _name(repository, "repository")
        if repository.split("/", 1)[0] != namespace:
            fail(f"repository {repository} is not in namespace {namespace}", 2)
    with _store(config, data_dir) as store:
        store.grant(namespace, role, user=user, team=team, repository=repository or "")
        _record(store, "grant", repository or namespace, role=str(role), user=user, team=team)
    target = repository or namespace
    typer.echo(f"{user or 'team ' + str(team)} is now {role} of {target}")


@visibility_app.command("set")
def visibility_set(
    name: str,
    visibility: Annotated[str, typer.Argument(help="public, private, or inherit (repository).")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Make a namespace (no '/') or a repository (with '/') public or private."""
    if visibility not in ("public", "private", "inherit"):
        fail("visibility must be public, private or inherit", 2)
    _name(name, "name")
    with _store(config, data_dir) as store:
        if "/" in name:
            store.set_repository_public(
                name, None if visibility == "inherit" else visibility == "public"
            )
        elif visibility == "inherit":
            fail("only a repository can inherit its visibility", 2)
        else:
            store.set_namespace_public(name, visibility == "public")
        _record(store, "visibility", name, visibility=visibility)
    typer.echo(f"{name} is {visibility}")


@robot_app.command("add")
def robot_add(
    namespace: str,
    name: str,
    actions: Annotated[str, typer.Option("--actions", help="pull, push, delete (comma list).")],
    repository: Annotated[
        list[str] | None, typer.Option("--repository", help="Limit to these (repeatable).")
    ] = None,
    expires_in_days: ExpiresOption = None,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Add a robot account; its secret is shown once and stored only hashed."""
    _name(name, "robot name")
    try:
        allowed = parse_actions(actions)
    except ValueError as exc:
        fail(str(exc), 2)
    for repo in repository or []:
        _name(repo, "repository")
        if repo.split("/", 1)[0] != namespace:
            fail(f"repository {repo} is not in namespace {namespace}", 2)
    with _store(config, data_dir) as store:
        secret = create_robot(
            store, namespace, name, allowed, repository or [], expires_in_days
        ).secret
        _record(store, "robot_add", namespace, robot=name, actions=sorted(allowed))
    username = robot_username(namespace, name)
    if json_output:
        typer.echo(json.dumps({"name": username, "secret": secret}))
    else:
        typer.echo(f"robot {username} added; its secret (shown only now):\n{secret}")


@robot_app.command("revoke")
def robot_revoke(
    namespace: str, name: str, data_dir: DataDirOption = None, config: ConfigOption = None
) -> None:
    """Revoke a robot account: its secret stops working."""
    with _store(config, data_dir) as store:
        store.revoke_robot(namespace, name)
        _record(store, "robot_revoke", namespace, robot=name)
    typer.echo(f"robot {robot_username(namespace, name)} revoked")


@token_app.command("add")
def token_add(
    user: str,
    name: str,
    expires_in_days: ExpiresOption = None,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Create a personal access token; use it as the password with the user's name."""
    with _store(config, data_dir) as store:
        token = create_token(store, user, name, expires_in_days).secret
        _record(store, "token_add", user, token=name)
    if json_output:
        typer.echo(json.dumps({"name": name, "token": token}))
    else:
        typer.echo(f"token {name} for {user} (shown only now):\n{token}")


@token_app.command("revoke")
def token_revoke(
    user: str, name: str, data_dir: DataDirOption = None, config: ConfigOption = None
) -> None:
    """Revoke a personal access token."""
    with _store(config, data_dir) as store:
        store.revoke_token(user, name)
        _record(store, "token_revoke", user, token=name)
    typer.echo(f"token {name} of {user} revoked")


def register_audit_command(app: typer.Typer) -> None:
    app.command("audit")(audit)


def audit(
    actor: Annotated[str | None, typer.Option(help="Only this user or robot.")] = None,
    action: Annotated[
        str | None, typer.Option(help="push, pull, delete, login, login_failed, grant, ...")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="A repository or namespace (and all below it).")
    ] = None,
    since: Annotated[datetime | None, typer.Option(help="From this time (ISO 8601, UTC).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Show the audit log, newest first."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    with _store(config, data_dir) as store:
        events = AuditStore(store.engine).query(
            actor=actor, action=action, target=target, since=since, limit=limit
        )
    if json_output:
        typer.echo(json.dumps([e.as_dict() for e in events]))
        return
    for e in events:
        when = e.at.strftime("%Y-%m-%d %H:%M:%S")
        detail = " ".join(f"{k}={v}" for k, v in (e.detail or {}).items())
        typer.echo(
            f"{when}  {e.actor:<20} {e.action:<14} {e.target}  {e.outcome}"
            f"{'  ' + detail if detail else ''}{'  from ' + e.address if e.address else ''}"
        )


def _emit(rows: list[dict[str, Any]], columns: list[str], json_output: bool) -> None:
    """Rows as JSON, or as a table for people."""
    if json_output:
        typer.echo(json.dumps(rows, default=str))
        return
    if not rows:
        typer.echo("(none)")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, box=None, header_style="bold")
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    Console().print(table)


def _cell(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


@org_app.command("list")
def org_list(
    json_output: JsonOption = False, data_dir: DataDirOption = None, config: ConfigOption = None
) -> None:
    """List organizations and user namespaces with their visibility."""
    with _store(config, data_dir) as store:
        namespaces = store.list_namespaces()
    rows = [
        {"name": n.name, "kind": n.kind, "visibility": "public" if n.public else "private"}
        for n in namespaces
    ]
    _emit(rows, ["name", "kind", "visibility"], json_output)


@member_app.command("list")
def member_list(
    namespace: str,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """List the roles given in a namespace."""
    with _store(config, data_dir) as store:
        rows = store.list_grants(namespace)
    _emit(rows, ["user", "team", "role", "repository"], json_output)


@team_app.command("list")
def team_list(
    org: str,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """List an organization's teams and their members."""
    with _store(config, data_dir) as store:
        rows = store.list_teams(org)
    _emit(rows, ["name", "members"], json_output)


@robot_app.command("list")
def robot_list(
    namespace: str,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """List a namespace's robots (never their secrets)."""
    with _store(config, data_dir) as store:
        rows = store.list_robots(namespace)
    _emit(
        rows,
        ["name", "actions", "repositories", "expires_at", "revoked", "created_at"],
        json_output,
    )


@token_app.command("list")
def token_list(
    user: str,
    json_output: JsonOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """List a user's access tokens (never the tokens themselves)."""
    with _store(config, data_dir) as store:
        rows = store.list_tokens(user)
    _emit(rows, ["name", "expires_at", "revoked", "created_at"], json_output)
