"""/v1/session: signing in to the web UI with a session cookie (see session.py)."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from cargohold.http.api.deps import AUTH_RESPONSES, Caller, log_change
from cargohold.http.api.errors import ApiError, unauthorized
from cargohold.http.api.session import COOKIE, Session, Sessions, sessions_of, set_cookie

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


@router.post(
    "",
    response_model=SessionInfo,
    summary="Sign in: HTTP basic credentials in, a session cookie and CSRF token out",
)
def sign_in(request: Request, response: Response, principal: Caller) -> SessionInfo:
    sessions = _sessions(request)
    if request.headers.get("authorization") is None:
        raise unauthorized("sign in with HTTP basic credentials")
    session = Session(principal.name, secrets.token_urlsafe(32))
    set_cookie(
        response, sessions.seal(session), sessions.idle_seconds, request.url.scheme == "https"
    )
    log_change(request, principal, "session_start", principal.name)
    return SessionInfo(
        username=principal.name,
        is_admin=principal.is_admin,
        csrf_token=session.csrf,
        idle_timeout_seconds=sessions.idle_seconds,
    )


@router.get(
    "",
    response_model=SessionInfo,
    summary="Who is signed in with the session cookie, and the session's CSRF token",
)
def who(request: Request, principal: Caller) -> SessionInfo:
    sessions = _sessions(request)
    session = sessions.open(request.cookies.get(COOKIE, ""))
    if session is None or session.user != principal.name:
        raise unauthorized("no session: sign in with POST /v1/session")
    return SessionInfo(
        username=principal.name,
        is_admin=principal.is_admin,
        csrf_token=session.csrf,
        idle_timeout_seconds=sessions.idle_seconds,
    )


@router.delete(
    "",
    status_code=204,
    response_class=Response,
    summary="Sign out: clears the session cookie (with the session's X-CSRF-Token)",
)
def sign_out(request: Request, principal: Caller) -> Response:
    request.scope.get("state", {}).pop("renew_session", None)
    response = Response(status_code=204)
    set_cookie(response, "", 0, request.url.scheme == "https")
    return response
