"""/v1/users: who am I, and (registry admins) the users of the registry."""

from __future__ import annotations

from fastapi import APIRouter, Request

from cargohold.auth.secrets import hash_password
from cargohold.auth.store import UserRecord
from cargohold.http.api.deps import (
    AUTH_RESPONSES,
    CONFLICT,
    INVALID,
    NOT_FOUND,
    AnyCaller,
    Caller,
    Store,
    check_name,
    log_change,
    require_registry_admin,
)
from cargohold.http.api.errors import conflict, not_found
from cargohold.http.api.schemas import Me, User, UserCreate, UserUpdate

router = APIRouter(prefix="/v1/users", tags=["users"], responses=AUTH_RESPONSES)


def user_out(record: UserRecord) -> User:
    return User(name=record.name, admin=record.is_admin, disabled=record.disabled)


@router.get("/me", response_model=Me, summary="The caller")
def me(principal: AnyCaller) -> Me:
    kind = "robot" if principal.kind == "robot" else "user"
    return Me(name=principal.name, kind=kind, admin=principal.is_admin)


@router.get("", response_model=list[User], summary="List users (registry admins)")
def list_users(principal: Caller, store: Store) -> list[User]:
    require_registry_admin(principal, "list users")
    return [user_out(record) for record in store.list_users()]


@router.post(
    "",
    response_model=User,
    status_code=201,
    summary="Add a user and their private personal namespace (registry admins)",
    responses={**INVALID, **CONFLICT},
)
def add_user(request: Request, body: UserCreate, principal: Caller, store: Store) -> User:
    require_registry_admin(principal, "add users")
    check_name(body.name, "user name")
    if store.namespace(body.name) is not None:  # before the slow hash; the store checks too
        raise conflict(f"the name {body.name!r} is taken by a user or organization")
    store.add_user(body.name, hash_password(body.password), body.admin)
    log_change(request, principal, "user_add", body.name, admin=body.admin)
    return User(name=body.name, admin=body.admin, disabled=False)


@router.get(
    "/{name}",
    response_model=User,
    summary="One user (themselves or registry admins)",
    responses=NOT_FOUND,
)
def get_user(name: str, principal: Caller, store: Store) -> User:
    if name != principal.name:
        require_registry_admin(principal, "see other users")
    record = store.get_user(name)
    if record is None:
        raise not_found(f"no user {name!r}")
    return user_out(record)


@router.patch(
    "/{name}",
    response_model=User,
    summary="Change a user's admin flag, disabled flag or password (registry admins)",
    responses={**INVALID, **NOT_FOUND, **CONFLICT},
)
def update_user(
    request: Request, name: str, body: UserUpdate, principal: Caller, store: Store
) -> User:
    require_registry_admin(principal, "change users")
    if store.get_user(name) is None:
        raise not_found(f"no user {name!r}")
    if name == principal.name and (body.admin is False or body.disabled):
        raise conflict("you cannot take away your own admin rights or disable yourself")
    if body.password is not None:
        store.set_password(name, hash_password(body.password))
        log_change(request, principal, "password_change", name)
    if body.admin is not None or body.disabled is not None:
        store.update_user(name, is_admin=body.admin, disabled=body.disabled)
        log_change(
            request, principal, "user_update", name, admin=body.admin, disabled=body.disabled
        )
    record = store.get_user(name)
    if record is None:  # removed meanwhile
        raise not_found(f"no user {name!r}")
    return user_out(record)
