"""/v1/namespaces/{ns}/members and /teams: roles of users and teams (namespace admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from cargohold.http.api.deps import (
    AUTH_RESPONSES,
    CONFLICT,
    INVALID,
    NOT_FOUND,
    Caller,
    Store,
    check_name,
    check_repository,
    log_change,
    namespace_admin,
)
from cargohold.http.api.errors import not_found
from cargohold.http.api.schemas import Grant, GrantCreate, Team, TeamCreate, TeamMemberAdd

router = APIRouter(
    prefix="/v1/namespaces/{ns}",
    tags=["members"],
    responses={**AUTH_RESPONSES, **INVALID, **NOT_FOUND},
)

RepositoryQuery = Annotated[
    str | None,
    Query(max_length=255, description="the grant on this repository, not the namespace-wide one"),
]


def _team(store: Store, ns: str, team: str) -> Team:
    for found in store.list_teams(ns):
        if found["name"] == team:
            return Team.model_validate(found)
    raise not_found(f"no team {team!r} in {ns!r}")


# -- grants
@router.get("/members", response_model=list[Grant], summary="Roles granted in a namespace")
def list_members(ns: str, principal: Caller, store: Store) -> list[Grant]:
    namespace_admin(store, principal, ns)
    return [
        Grant(
            user=row["user"],
            team=row["team"],
            role=row["role"],
            repository=row["repository"] or None,
        )
        for row in store.list_grants(ns)
    ]


@router.post(
    "/members",
    response_model=Grant,
    status_code=201,
    summary="Give a user or a team a role in the namespace or one repository; replaces any old",
)
def add_member(
    request: Request, ns: str, body: GrantCreate, principal: Caller, store: Store
) -> Grant:
    namespace_admin(store, principal, ns)
    if body.user is not None:
        check_name(body.user, "user name")
        if store.get_user(body.user) is None:
            raise not_found(f"no user {body.user!r}")
    if body.team is not None:
        _team(store, ns, check_name(body.team, "team name"))
    if body.repository is not None:
        check_repository(body.repository, ns)
    store.grant(ns, body.role, user=body.user, team=body.team, repository=body.repository or "")
    log_change(
        request,
        principal,
        "grant",
        body.repository or ns,
        role=str(body.role),
        user=body.user,
        team=body.team,
    )
    return Grant(user=body.user, team=body.team, role=body.role, repository=body.repository)


def _revoke(
    request: Request,
    store: Store,
    principal: Caller,
    ns: str,
    user: str | None,
    team: str | None,
    repository: str | None,
) -> Response:
    namespace_admin(store, principal, ns)
    if repository is not None:
        check_repository(repository, ns)
    store.revoke_grant(ns, user=user, team=team, repository=repository or "")
    log_change(request, principal, "grant_revoke", repository or ns, user=user, team=team)
    return Response(status_code=204)


@router.delete(
    "/members/users/{user}",
    status_code=204,
    response_class=Response,
    summary="Remove a user's role (namespace-wide, or on ?repository=)",
)
def remove_user_member(
    request: Request,
    ns: str,
    user: str,
    principal: Caller,
    store: Store,
    repository: RepositoryQuery = None,
) -> Response:
    return _revoke(request, store, principal, ns, user, None, repository)


@router.delete(
    "/members/teams/{team}",
    status_code=204,
    response_class=Response,
    summary="Remove a team's role (namespace-wide, or on ?repository=)",
)
def remove_team_member_grant(
    request: Request,
    ns: str,
    team: str,
    principal: Caller,
    store: Store,
    repository: RepositoryQuery = None,
) -> Response:
    return _revoke(request, store, principal, ns, None, team, repository)


# -- teams
@router.get("/teams", response_model=list[Team], summary="Teams and their members")
def list_teams(ns: str, principal: Caller, store: Store) -> list[Team]:
    namespace_admin(store, principal, ns)
    return [Team.model_validate(team) for team in store.list_teams(ns)]


@router.post(
    "/teams", response_model=Team, status_code=201, summary="Add a team", responses=CONFLICT
)
def add_team(request: Request, ns: str, body: TeamCreate, principal: Caller, store: Store) -> Team:
    namespace_admin(store, principal, ns)
    check_name(body.name, "team name")
    store.add_team(ns, body.name)
    log_change(request, principal, "team_add", ns, team=body.name)
    return Team(name=body.name, members=[])


@router.get("/teams/{team}", response_model=Team, summary="One team and its members")
def get_team(ns: str, team: str, principal: Caller, store: Store) -> Team:
    namespace_admin(store, principal, ns)
    return _team(store, ns, team)


@router.post(
    "/teams/{team}/members", response_model=Team, summary="Add a user to a team (idempotent)"
)
def add_team_member(
    request: Request, ns: str, team: str, body: TeamMemberAdd, principal: Caller, store: Store
) -> Team:
    namespace_admin(store, principal, ns)
    _team(store, ns, team)
    check_name(body.user, "user name")
    store.add_team_member(ns, team, body.user)
    log_change(request, principal, "team_member_add", ns, team=team, user=body.user)
    return _team(store, ns, team)


@router.delete(
    "/teams/{team}/members/{user}",
    status_code=204,
    response_class=Response,
    summary="Remove a user from a team",
)
def remove_team_member(
    request: Request, ns: str, team: str, user: str, principal: Caller, store: Store
) -> Response:
    namespace_admin(store, principal, ns)
    store.remove_team_member(ns, team, user)
    log_change(request, principal, "team_member_remove", ns, team=team, user=user)
    return Response(status_code=204)
