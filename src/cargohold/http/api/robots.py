"""/v1/namespaces/{ns}/robots: robot accounts for automation (namespace admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from cargohold.auth.credentials import create_robot
from cargohold.auth.principal import robot_username
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
from cargohold.http.api.schemas import Robot, RobotCreate, RobotCreated

router = APIRouter(
    prefix="/v1/namespaces/{ns}/robots",
    tags=["robots"],
    responses={**AUTH_RESPONSES, **INVALID, **NOT_FOUND},
)


def robot_out(row: dict[str, Any]) -> Robot:
    return Robot(username=robot_username(row["namespace"], row["name"]), **row)


@router.get("", response_model=list[Robot], summary="Robots of a namespace, revoked ones too")
def list_robots(ns: str, principal: Caller, store: Store) -> list[Robot]:
    namespace_admin(store, principal, ns)
    return [robot_out(row) for row in store.list_robots(ns)]


@router.post(
    "",
    response_model=RobotCreated,
    status_code=201,
    summary="Add a robot; its secret is in this response only and is stored hashed",
    responses=CONFLICT,
)
def add_robot(
    request: Request, ns: str, body: RobotCreate, principal: Caller, store: Store
) -> RobotCreated:
    namespace_admin(store, principal, ns)
    check_name(body.name, "robot name")
    for repository in body.repositories:
        check_repository(repository, ns)
    made = create_robot(store, ns, body.name, body.actions, body.repositories, body.expires_in_days)
    actions = sorted(set(body.actions))
    log_change(request, principal, "robot_add", ns, robot=body.name, actions=actions)
    return RobotCreated(
        username=robot_username(ns, body.name),
        namespace=ns,
        name=body.name,
        actions=actions,  # type: ignore[arg-type]
        repositories=sorted(set(body.repositories)),
        expires_at=made.expires_at,
        revoked=False,
        created_at=made.created_at,
        secret=made.secret,
    )


@router.delete(
    "/{name}",
    status_code=204,
    response_class=Response,
    summary="Revoke a robot: its secret stops working at once",
)
def revoke_robot(request: Request, ns: str, name: str, principal: Caller, store: Store) -> Response:
    namespace_admin(store, principal, ns)
    if store.get_robot(ns, name) is None:
        raise not_found(f"no robot {name!r} in {ns!r}")
    store.revoke_robot(ns, name)
    log_change(request, principal, "robot_revoke", ns, robot=name)
    return Response(status_code=204)
