"""/v1/users/{name}/sessions: a user's web UI sessions, listed and ended (by the user
themselves or registry admins). Ending a session deletes it server-side: its cookie,
wherever it was copied to, stops working on every replica at once."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from cargohold.http.api.deps import (
    AUTH_RESPONSES,
    NOT_FOUND,
    Caller,
    Store,
    log_change,
)
from cargohold.http.api.errors import ApiError, denied, not_found
from cargohold.http.api.session import Sessions, request_session, sessions_of
from cargohold.storage.meta.sql_sessions import id_hash

router = APIRouter(
    prefix="/v1/users/{name}/sessions",
    tags=["session"],
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)


class SessionOut(BaseModel):
    id: str = Field(description="names the session to end it; not a credential")
    created_at: datetime
    last_seen_at: datetime = Field(description="its last use, to within a minute")
    address: str | None = Field(description="where it was signed in from")
    user_agent: str | None
    current: bool = Field(description="the session making this request")


class SessionsEnded(BaseModel):
    ended: int


def _sessions(request: Request) -> Sessions:
    sessions = sessions_of(request)
    if sessions is None:
        raise ApiError(503, "UNAVAILABLE", "sessions need the registry's settings")
    return sessions


def _user_id(name: str, principal_name: str, is_admin: bool, store: Store) -> int:
    if name != principal_name and not is_admin:
        raise denied(f"only {name} or a registry admin may manage {name}'s sessions")
    user = store.get_user(name)
    if user is None:
        raise not_found(f"no user {name!r}")
    return user.id


def _current_hash(request: Request) -> str | None:
    session = request_session(request)
    return None if session is None else id_hash(session.id)


@router.get("", response_model=list[SessionOut], summary="A user's live sessions, newest use first")
def list_sessions(request: Request, name: str, principal: Caller, store: Store) -> list[SessionOut]:
    user_id = _user_id(name, principal.name, principal.is_admin, store)
    sessions = _sessions(request)
    current = _current_hash(request)
    return [
        SessionOut(
            id=record.id_hash,
            created_at=record.created_at,
            last_seen_at=record.last_seen_at,
            address=record.address,
            user_agent=record.user_agent,
            current=record.id_hash == current,
        )
        for record in sessions.store.of_user(user_id, sessions.idle)
    ]


@router.delete(
    "/{session_id}",
    status_code=204,
    response_class=Response,
    summary="End one session: its cookie stops working at once",
)
def end_session(
    request: Request, name: str, session_id: str, principal: Caller, store: Store
) -> Response:
    user_id = _user_id(name, principal.name, principal.is_admin, store)
    if not _sessions(request).store.end_hash(session_id[:64], user_id):
        raise not_found(f"user {name!r} has no session {session_id[:64]!r}")
    log_change(request, principal, "session_revoke", name)
    return Response(status_code=204)


@router.delete(
    "",
    response_model=SessionsEnded,
    summary="End every session of the user but the one making this request",
)
def end_other_sessions(
    request: Request, name: str, principal: Caller, store: Store
) -> SessionsEnded:
    user_id = _user_id(name, principal.name, principal.is_admin, store)
    current = request_session(request)
    ended = _sessions(request).store.end_all(user_id, keep=current.id if current else None)
    log_change(request, principal, "session_revoke_all", name, ended=ended)
    return SessionsEnded(ended=ended)
