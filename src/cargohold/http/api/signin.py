"""/v1/session: signing in to the web UI with a session cookie (see session.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from cargohold.auth.principal import Principal
from cargohold.http.api.deps import AUTH_RESPONSES, Caller, address_of, log_change
from cargohold.http.api.errors import ApiError, unauthorized
from cargohold.http.api.session import (
    COOKIE,
    Session,
    Sessions,
    request_session,
    sessions_of,
    set_cookie,
)

# -- the routes
router = APIRouter(prefix="/v1/session", tags=["session"], responses=AUTH_RESPONSES)


class SessionInfo(BaseModel):
    username: str
    is_admin: bool
    csrf_token: str = Field(
        description="send it as the X-CSRF-Token header with every change made by cookie"
    )
    idle_timeout_seconds: int


def _sessions(request: Request) -> Sessions:
    sessions = sessions_of(request)
    if sessions is None:
        raise ApiError(503, "UNAVAILABLE", "sessions need the registry's settings")
    return sessions


def _info(principal: Principal, session: Session, sessions: Sessions) -> SessionInfo:
    return SessionInfo(
        username=principal.name,
        is_admin=principal.is_admin,
        csrf_token=session.csrf,
        idle_timeout_seconds=sessions.idle_seconds,
    )


@router.post(
    "",
    response_model=SessionInfo,
    summary="Sign in: HTTP basic credentials in, a session cookie and CSRF token out",
)
def sign_in(request: Request, response: Response, principal: Caller) -> SessionInfo:
    sessions = _sessions(request)
    if request.headers.get("authorization") is None or principal.user_id is None:
        raise unauthorized("sign in with HTTP basic credentials")
    replaced = sessions.unseal(request.cookies.get(COOKIE, ""))
    if replaced is not None:  # signing in again in the same browser: the old session ends
        sessions.store.end(replaced.id)
    session, cookie = sessions.start(
        principal.name,
        principal.user_id,
        address_of(request),
        request.headers.get("user-agent"),
    )
    set_cookie(response, cookie, sessions.idle_seconds, request.url.scheme == "https")
    log_change(request, principal, "session_start", principal.name)
    return _info(principal, session, sessions)


@router.get(
    "",
    response_model=SessionInfo,
    summary="Who is signed in with the session cookie, and the session's CSRF token",
)
def who(request: Request, principal: Caller) -> SessionInfo:
    sessions = _sessions(request)
    session = request_session(request)
    if session is None:
        raise unauthorized("no session: sign in with POST /v1/session")
    return _info(principal, session, sessions)


@router.delete(
    "",
    status_code=204,
    response_class=Response,
    summary="Sign out: ends the session on the server and clears its cookie "
    "(with the session's X-CSRF-Token)",
)
def sign_out(request: Request, principal: Caller) -> Response:
    request.scope.get("state", {}).pop("renew_session", None)
    session = request_session(request)
    if session is not None:
        _sessions(request).store.end(session.id)
        log_change(request, principal, "session_end", principal.name)
    response = Response(status_code=204)
    set_cookie(response, "", 0, request.url.scheme == "https")
    return response
