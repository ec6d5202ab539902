"""The identity store: users, namespaces, teams, grants, robots and access tokens."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from cargohold.auth.roles import Role
from cargohold.storage.meta import models as m
from cargohold.storage.meta.sqlbase import SqlBase, now


class AuthError(Exception):
    """A management request cannot be done; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    name: str
    password_hash: str
    is_admin: bool
    disabled: bool


@dataclass(frozen=True, slots=True)
class NamespaceRecord:
    id: int
    name: str
    kind: str
    public: bool


@dataclass(frozen=True, slots=True)
class RobotRecord:
    namespace: str
    name: str
    secret_hash: str
    actions: frozenset[str]
    repositories: frozenset[str]
    expires_at: datetime | None
    revoked: bool


@dataclass(frozen=True, slots=True)
class TokenRecord:
    name: str
    secret_hash: str
    expires_at: datetime | None


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything written here is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _same(column: Any, value: int | None) -> Any:
    return column.is_(None) if value is None else column == value


def is_live(expires_at: datetime | None) -> bool:
    return expires_at is None or _aware(expires_at) > now()  # type: ignore[operator]


class AuthStore(SqlBase):
    # -- users
    def user_count(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(m.users)).scalar_one())

    def add_user(self, name: str, password_hash: str, is_admin: bool) -> None:
        with self._write() as conn:
            if self._namespace(conn, name) is not None:
                raise AuthError(f"the name {name!r} is taken by a user or organization")
            conn.execute(
                m.users.insert().values(
                    name=name,
                    password_hash=password_hash,
                    is_admin=is_admin,
                    disabled=False,
                    created_at=now(),
                )
            )
            conn.execute(
                m.namespaces.insert().values(name=name, kind="user", public=False, created_at=now())
            )

    def set_password(self, name: str, password_hash: str) -> None:
        with self._write() as conn:
            result = conn.execute(
                update(m.users).where(m.users.c.name == name).values(password_hash=password_hash)
            )
            if not result.rowcount:
                raise AuthError(f"no user {name!r}")
            # A new password ends the user's web UI sessions (whoever knew the old one).
            user_id = self._user_id(conn, name)
            conn.execute(delete(m.ui_sessions).where(m.ui_sessions.c.user_id == user_id))

    def get_user(self, name: str) -> UserRecord | None:
        with self._read() as conn:
            row = conn.execute(select(m.users).where(m.users.c.name == name)).first()
        if row is None:
            return None
        return UserRecord(row.id, row.name, row.password_hash, row.is_admin, row.disabled)

    def list_users(self) -> list[UserRecord]:
        with self._read() as conn:
            rows = conn.execute(select(m.users).order_by(m.users.c.name)).all()
        return [UserRecord(r.id, r.name, r.password_hash, r.is_admin, r.disabled) for r in rows]

    # -- namespaces and visibility
    @staticmethod
    def _namespace(conn: Connection, name: str) -> NamespaceRecord | None:
        row = conn.execute(select(m.namespaces).where(m.namespaces.c.name == name)).first()
        if row is None:
            return None
        return NamespaceRecord(row.id, row.name, row.kind, row.public)

    def _require_namespace(self, conn: Connection, name: str) -> NamespaceRecord:
        namespace = self._namespace(conn, name)
        if namespace is None:
            raise AuthError(f"no namespace {name!r}: create it with `cargohold org add {name}`")
        return namespace

    def namespace(self, name: str) -> NamespaceRecord | None:
        with self._read() as conn:
            return self._namespace(conn, name)

    def add_org(self, name: str, public: bool) -> None:
        try:
            with self._write() as conn:
                conn.execute(
                    m.namespaces.insert().values(
                        name=name, kind="org", public=public, created_at=now()
                    )
                )
        except IntegrityError:
            raise AuthError(f"the name {name!r} is taken by a user or organization") from None

    def set_namespace_public(self, name: str, public: bool) -> None:
        with self._write() as conn:
            self._require_namespace(conn, name)
            conn.execute(
                update(m.namespaces).where(m.namespaces.c.name == name).values(public=public)
            )

    def set_repository_public(self, repository: str, public: bool | None) -> None:
        """Override one repository's visibility; None returns it to its namespace's."""
        with self._write() as conn:
            conn.execute(
                delete(m.repository_visibility).where(
                    m.repository_visibility.c.repository == repository
                )
            )
            if public is not None:
                conn.execute(
                    m.repository_visibility.insert().values(repository=repository, public=public)
                )

    def visibility(self, repository: str) -> tuple[NamespaceRecord | None, bool | None]:
        """The repository's namespace and its visibility override, in one round trip."""
        namespace_name = repository.split("/", 1)[0]
        with self._read() as conn:
            namespace = self._namespace(conn, namespace_name)
            override = conn.execute(
                select(m.repository_visibility.c.public).where(
                    m.repository_visibility.c.repository == repository
                )
            ).scalar()
        return namespace, override

    # -- teams and grants
    def add_team(self, org: str, team: str) -> None:
        try:
            with self._write() as conn:
                namespace = self._require_namespace(conn, org)
                conn.execute(m.teams.insert().values(namespace_id=namespace.id, name=team))
        except IntegrityError:
            raise AuthError(f"team {team!r} exists in {org!r}") from None

    def _team_id(self, conn: Connection, namespace_id: int, team: str) -> int:
        team_id = conn.execute(
            select(m.teams.c.id).where(
                m.teams.c.namespace_id == namespace_id, m.teams.c.name == team
            )
        ).scalar()
        if team_id is None:
            raise AuthError(f"no team {team!r}: create it with `cargohold team add`")
        return int(team_id)

    def _user_id(self, conn: Connection, user: str) -> int:
        user_id = conn.execute(select(m.users.c.id).where(m.users.c.name == user)).scalar()
        if user_id is None:
            raise AuthError(f"no user {user!r}: create it with `cargohold user add {user}`")
        return int(user_id)

    def add_team_member(self, org: str, team: str, user: str) -> None:
        with self._write() as conn:
            namespace = self._require_namespace(conn, org)
            team_id = self._team_id(conn, namespace.id, team)
            user_id = self._user_id(conn, user)
            conn.execute(
                self._insert(m.team_members)
                .values(team_id=team_id, user_id=user_id)
                .on_conflict_do_nothing()
            )

    def grant(
        self,
        namespace: str,
        role: Role,
        user: str | None = None,
        team: str | None = None,
        repository: str = "",
    ) -> None:
        """Give a user or a team a role in a namespace (or one repository); replaces any old."""
        with self._write() as conn:
            namespace_id, user_id, team_id, _ = self._drop_grant(
                conn, namespace, user, team, repository
            )
            conn.execute(
                m.grants.insert().values(
                    namespace_id=namespace_id,
                    repository=repository,
                    user_id=user_id,
                    team_id=team_id,
                    role=str(role),
                )
            )

    def _drop_grant(
        self,
        conn: Connection,
        namespace: str,
        user: str | None,
        team: str | None,
        repository: str,
    ) -> tuple[int, int | None, int | None, int]:
        """Delete one grant; returns the resolved ids and how many rows went."""
        ns = self._require_namespace(conn, namespace)
        user_id = self._user_id(conn, user) if user else None
        team_id = self._team_id(conn, ns.id, team) if team else None
        result = conn.execute(
            delete(m.grants).where(
                m.grants.c.namespace_id == ns.id,
                m.grants.c.repository == repository,
                _same(m.grants.c.user_id, user_id),
                _same(m.grants.c.team_id, team_id),
            )
        )
        return ns.id, user_id, team_id, result.rowcount

    def roles(self, user_id: int, namespace_id: int, repository: str) -> list[Role]:
        """Roles a user holds on a repository: directly or through teams, namespace-wide or not."""
        teams_of_user = select(m.team_members.c.team_id).where(m.team_members.c.user_id == user_id)
        query = select(m.grants.c.role).where(
            m.grants.c.namespace_id == namespace_id,
            m.grants.c.repository.in_(["", repository]),
            or_(m.grants.c.user_id == user_id, m.grants.c.team_id.in_(teams_of_user)),
        )
        with self._read() as conn:
            return [Role(role) for role in conn.execute(query).scalars()]

    # -- robots
    def add_robot(
        self,
        namespace: str,
        name: str,
        secret_hash: str,
        actions: Iterable[str],
        repositories: Iterable[str],
        expires_at: datetime | None,
    ) -> None:
        try:
            with self._write() as conn:
                ns = self._require_namespace(conn, namespace)
                conn.execute(
                    m.robots.insert().values(
                        namespace_id=ns.id,
                        name=name,
                        secret_hash=secret_hash,
                        actions=",".join(sorted(actions)),
                        repositories=json.dumps(sorted(repositories)),
                        expires_at=expires_at,
                        revoked=False,
                        created_at=now(),
                    )
                )
        except IntegrityError:
            raise AuthError(f"robot {name!r} exists in {namespace!r}") from None

    def get_robot(self, namespace: str, name: str) -> RobotRecord | None:
        query = (
            select(m.robots)
            .join(m.namespaces, m.namespaces.c.id == m.robots.c.namespace_id)
            .where(m.namespaces.c.name == namespace, m.robots.c.name == name)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return RobotRecord(
            namespace=namespace,
            name=row.name,
            secret_hash=row.secret_hash,
            actions=frozenset(a for a in row.actions.split(",") if a),
            repositories=frozenset(json.loads(row.repositories)),
            expires_at=_aware(row.expires_at),
            revoked=row.revoked,
        )

    def revoke_robot(self, namespace: str, name: str) -> None:
        with self._write() as conn:
            ns = self._require_namespace(conn, namespace)
            result = conn.execute(
                update(m.robots)
                .where(m.robots.c.namespace_id == ns.id, m.robots.c.name == name)
                .values(revoked=True)
            )
            if not result.rowcount:
                raise AuthError(f"no robot {name!r} in {namespace!r}")

    # -- personal access tokens
    def add_token(
        self, user: str, name: str, secret_hash: str, expires_at: datetime | None
    ) -> None:
        try:
            with self._write() as conn:
                user_id = self._user_id(conn, user)
                conn.execute(
                    m.access_tokens.insert().values(
                        user_id=user_id,
                        name=name,
                        secret_hash=secret_hash,
                        expires_at=expires_at,
                        revoked=False,
                        created_at=now(),
                    )
                )
        except IntegrityError:
            raise AuthError(f"user {user!r} already has a token named {name!r}") from None

    def live_tokens(self, user_id: int) -> list[TokenRecord]:
        query = select(
            m.access_tokens.c.name, m.access_tokens.c.secret_hash, m.access_tokens.c.expires_at
        ).where(m.access_tokens.c.user_id == user_id, m.access_tokens.c.revoked.is_(False))
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            TokenRecord(r.name, r.secret_hash, _aware(r.expires_at))
            for r in rows
            if is_live(r.expires_at)
        ]

    def revoke_token(self, user: str, name: str) -> None:
        with self._write() as conn:
            user_id = self._user_id(conn, user)
            result = conn.execute(
                update(m.access_tokens)
                .where(m.access_tokens.c.user_id == user_id, m.access_tokens.c.name == name)
                .values(revoked=True)
            )
            if not result.rowcount:
                raise AuthError(f"user {user!r} has no token named {name!r}")

    # -- listings and updates for the admin API (dicts never carry password or secret hashes)
    def update_user(
        self, name: str, *, is_admin: bool | None = None, disabled: bool | None = None
    ) -> None:
        values = {
            key: value
            for key, value in (("is_admin", is_admin), ("disabled", disabled))
            if value is not None
        }
        with self._write() as conn:
            user_id = self._user_id(conn, name)
            if values:
                conn.execute(update(m.users).where(m.users.c.id == user_id).values(**values))
            if disabled:  # a disabled user's web UI sessions end for good
                conn.execute(delete(m.ui_sessions).where(m.ui_sessions.c.user_id == user_id))

    def list_namespaces(self, kind: str | None = None) -> list[NamespaceRecord]:
        query = select(m.namespaces).order_by(m.namespaces.c.name)
        if kind is not None:
            query = query.where(m.namespaces.c.kind == kind)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [NamespaceRecord(r.id, r.name, r.kind, r.public) for r in rows]

    def member_roles(self, user_id: int, namespace_id: int) -> list[tuple[str, Role]]:
        """(repository or "", role) of every grant a user holds in a namespace, teams included."""
        teams_of_user = select(m.team_members.c.team_id).where(m.team_members.c.user_id == user_id)
        query = select(m.grants.c.repository, m.grants.c.role).where(
            m.grants.c.namespace_id == namespace_id,
            or_(m.grants.c.user_id == user_id, m.grants.c.team_id.in_(teams_of_user)),
        )
        with self._read() as conn:
            return [(r.repository, Role(r.role)) for r in conn.execute(query).all()]

    def namespaces_of_user(self, user_id: int) -> set[str]:
        """Names of the namespaces where a user holds a grant or sits on a team."""
        teams_of_user = select(m.team_members.c.team_id).where(m.team_members.c.user_id == user_id)
        granted = select(m.grants.c.namespace_id).where(
            or_(m.grants.c.user_id == user_id, m.grants.c.team_id.in_(teams_of_user))
        )
        on_team = select(m.teams.c.namespace_id).where(m.teams.c.id.in_(teams_of_user))
        query = select(m.namespaces.c.name).where(
            or_(m.namespaces.c.id.in_(granted), m.namespaces.c.id.in_(on_team))
        )
        with self._read() as conn:
            return set(conn.execute(query).scalars())

    def list_grants(self, namespace: str) -> list[dict[str, Any]]:
        """Grants of a namespace: {"user", "team", "role", "repository"} ("" = namespace-wide)."""
        query = (
            select(
                m.users.c.name.label("user"),
                m.teams.c.name.label("team"),
                m.grants.c.role,
                m.grants.c.repository,
            )
            .select_from(m.grants)
            .outerjoin(m.users, m.users.c.id == m.grants.c.user_id)
            .outerjoin(m.teams, m.teams.c.id == m.grants.c.team_id)
            .order_by(m.grants.c.repository, m.users.c.name, m.teams.c.name)
        )
        with self._read() as conn:
            ns = self._require_namespace(conn, namespace)
            rows = conn.execute(query.where(m.grants.c.namespace_id == ns.id)).all()
        return [dict(row._mapping) for row in rows]

    def revoke_grant(
        self,
        namespace: str,
        user: str | None = None,
        team: str | None = None,
        repository: str = "",
    ) -> None:
        """Remove the grant of a user or a team in a namespace (or one repository of it)."""
        with self._write() as conn:
            *_, removed = self._drop_grant(conn, namespace, user, team, repository)
        if not removed:
            who = user if user else f"team {team}"
            raise AuthError(f"no grant for {who} in {repository or namespace}")

    def list_teams(self, namespace: str) -> list[dict[str, Any]]:
        """Teams of a namespace: {"name", "members": [user names]}."""
        query = (
            select(m.teams.c.name, m.users.c.name.label("member"))
            .select_from(m.teams)
            .outerjoin(m.team_members, m.team_members.c.team_id == m.teams.c.id)
            .outerjoin(m.users, m.users.c.id == m.team_members.c.user_id)
            .order_by(m.teams.c.name, m.users.c.name)
        )
        with self._read() as conn:
            ns = self._require_namespace(conn, namespace)
            rows = conn.execute(query.where(m.teams.c.namespace_id == ns.id)).all()
        teams: dict[str, list[str]] = {}
        for row in rows:
            members = teams.setdefault(row.name, [])
            if row.member is not None:
                members.append(row.member)
        return [{"name": name, "members": members} for name, members in teams.items()]

    def remove_team_member(self, org: str, team: str, user: str) -> None:
        with self._write() as conn:
            namespace = self._require_namespace(conn, org)
            team_id = self._team_id(conn, namespace.id, team)
            user_id = self._user_id(conn, user)
            result = conn.execute(
                delete(m.team_members).where(
                    m.team_members.c.team_id == team_id, m.team_members.c.user_id == user_id
                )
            )
            if not result.rowcount:
                raise AuthError(f"no user {user!r} in team {team!r} of {org!r}")

    def list_robots(self, namespace: str) -> list[dict[str, Any]]:
        """Robots of a namespace, revoked ones included; without their secret hashes."""
        query = select(m.robots).order_by(m.robots.c.name)
        with self._read() as conn:
            ns = self._require_namespace(conn, namespace)
            rows = conn.execute(query.where(m.robots.c.namespace_id == ns.id)).all()
        return [
            {
                "namespace": namespace,
                "name": r.name,
                "actions": sorted(a for a in r.actions.split(",") if a),
                "repositories": sorted(json.loads(r.repositories)),
                "expires_at": _aware(r.expires_at),
                "revoked": r.revoked,
                "created_at": _aware(r.created_at),
            }
            for r in rows
        ]

    def list_tokens(self, user: str) -> list[dict[str, Any]]:
        """A user's access tokens, revoked and expired ones included; without their hashes."""
        query = select(
            m.access_tokens.c.name,
            m.access_tokens.c.expires_at,
            m.access_tokens.c.revoked,
            m.access_tokens.c.created_at,
        ).order_by(m.access_tokens.c.name)
        with self._read() as conn:
            user_id = self._user_id(conn, user)
            rows = conn.execute(query.where(m.access_tokens.c.user_id == user_id)).all()
        return [
            {
                "name": r.name,
                "expires_at": _aware(r.expires_at),
                "revoked": r.revoked,
                "created_at": _aware(r.created_at),
            }
            for r in rows
        ]
