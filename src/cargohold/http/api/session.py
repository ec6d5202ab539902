"""/v1/session: signing in with a cookie, for the web UI.

`POST /v1/session` with HTTP basic credentials (a user name with its password or one of its
tokens: the same accounts, checks and pause after repeated failures as every other
endpoint) starts a session and sets its cookie: HttpOnly, SameSite=Strict, Path=/.

A session lives in the metadata database (table ui_sessions, see
storage/meta/sql_sessions.py), so every replica sees it start and end: signing out,
revoking it from the sessions list, a new password and disabling the user delete its row,
and a copied cookie stops working at once. The cookie is an encrypted, authenticated
token (Fernet, with a key derived from the registry's secrets key, so every replica reads
it) naming the session, its user and its CSRF token. A session ends after
`session_idle_minutes` without a request: a request that it authenticates renews the
cookie and the row's last use once the cookie is a minute old (one write a minute, not
one per request).

Requests authenticated by the cookie that change something (POST, PUT, PATCH, DELETE)
must repeat the CSRF token in the `X-CSRF-Token` header, else 403: another site can make
a browser send the cookie, never read the token. Every request re-reads the user, so a
disabled user's session ends at once. Robot accounts cannot sign in here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from fastapi import Request, Response

from cargohold.auth.authenticate import Authenticator
from cargohold.auth.principal import Principal
from cargohold.http.api.errors import denied
from cargohold.secretbox import SecretBox
from cargohold.storage.meta.sql_sessions import SessionRecord, SessionStore

COOKIE = "cargohold_session"
CSRF_HEADER = "x-csrf-token"
# The web UI sends this header: a 401 then carries no Basic challenge (no browser dialog).
UI_HEADER = "x-cargohold-ui"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Where cookie_principal leaves the request's session (for sign-out and the sessions list).
SESSION_STATE = "ui_session"


@dataclass(frozen=True, slots=True)
class Session:
    id: str  # random; the database holds only its hash
    user: str
    csrf: str


class Sessions:
    """Seals and opens session cookies, and keeps the sessions in the database."""

    def __init__(self, key: bytes, idle_seconds: int, store: SessionStore | None = None) -> None:
        derived = hmac.new(key, b"cargohold web UI session cookie", hashlib.sha256).digest()
        self._fernet = Fernet(urlsafe_b64encode(derived))
        self.idle_seconds = idle_seconds
        self._store = store

    @property
    def idle(self) -> timedelta:
        return timedelta(seconds=self.idle_seconds)

    @property
    def store(self) -> SessionStore:
        if self._store is None:
            raise RuntimeError("these sessions have no database")
        return self._store

    def seal(self, session: Session) -> str:
        payload = json.dumps({"s": session.id, "u": session.user, "c": session.csrf}).encode()
        return self._fernet.encrypt(payload).decode("ascii")

    def stale(self, cookie: str, now: float | None = None) -> bool:
        """Whether a valid cookie is old enough to renew: a minute old, or a tenth of the
        idle timeout if that is shorter. Fresh cookies are not renewed, so a response to a
        request sent just before signing out does not bring the session back."""
        try:
            issued = self._fernet.extract_timestamp(cookie.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            return False
        age = (time.time() if now is None else now) - issued
        return age >= min(60, self.idle_seconds / 10)

    def unseal(self, cookie: str, now: float | None = None) -> Session | None:
        """What the cookie says, or None if it is forged, damaged or idle for too long
        (without asking the database whether the session still exists)."""
        try:
            token = cookie.encode("ascii")
            if now is None:
                payload = self._fernet.decrypt(token, ttl=self.idle_seconds)
            else:
                payload = self._fernet.decrypt_at_time(token, self.idle_seconds, int(now))
            data = json.loads(payload)
            return Session(str(data["s"]), str(data["u"]), str(data["c"]))
        except (InvalidToken, ValueError, KeyError, TypeError, UnicodeEncodeError):
            return None

    def start(
        self, user: str, user_id: int, address: str | None, user_agent: str | None
    ) -> tuple[Session, str]:
        """A new session of the user, recorded in the database, and its cookie."""
        session = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32))
        self.store.start(session.id, user_id, address, user_agent, self.idle)
        return session, self.seal(session)

    def open(self, cookie: str) -> tuple[Session, SessionRecord] | None:
        """The live session of the cookie and its row, or None (forged, idle, or ended)."""
        session = self.unseal(cookie)
        if session is None:
            return None
        record = self.store.live(session.id, self.idle)
        if record is None:
            return None
        return session, record


def sessions_of(request: Request) -> Sessions | None:
    """The app's sessions, made on first use; None without settings (no sessions)."""
    state = request.app.state
    existing: Sessions | None = getattr(state, "sessions", None)
    if existing is not None:
        return existing
    settings = getattr(state, "settings", None)
    if settings is None:
        return None
    box = SecretBox(settings.secrets_key_path)  # creates the key file on first use
    store = SessionStore(state.store.engine)  # the identity store's database
    made = Sessions(box.key_file.read_bytes().strip(), settings.session_idle_minutes * 60, store)
    state.sessions = made
    return made


def request_session(request: Request) -> Session | None:
    """The session that authenticated this request (None: basic credentials, or none)."""
    found: Session | None = request.scope.get("state", {}).get(SESSION_STATE)
    return found


def cookie_principal(request: Request, authenticator: Authenticator) -> Principal | None:
    """The signed-in user of the session cookie, or None; CSRF is checked for changes.

    Renews the cookie on the response (see `RenewSession`)."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    sessions = sessions_of(request)
    if sessions is None:
        return None
    opened = sessions.open(cookie)
    if opened is None:
        return None
    session, record = opened
    principal = authenticator.resolve(session.user)
    if principal is None or principal.kind != "user" or principal.user_id != record.user_id:
        return None
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            raise denied("a change made with a session cookie needs its X-CSRF-Token header")
    state = request.scope.setdefault("state", {})
    state[SESSION_STATE] = session
    if sessions.stale(cookie):
        sessions.store.touch(session.id)
        state["renew_session"] = sessions.seal(session)
    return principal


def set_cookie(response: Response, value: str, max_age: int, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


class RenewSession:
    """ASGI middleware: a response to a request its session cookie authenticated carries
    the cookie again, with a fresh idle timeout (unless the response sets it itself)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def renewing(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                value = scope.get("state", {}).get("renew_session")
                headers = list(message.get("headers", []))
                sets_cookie = any(
                    k.lower() == b"set-cookie" and v.startswith(COOKIE.encode() + b"=")
                    for k, v in headers
                )
                ui = any(k.lower() == UI_HEADER.encode() for k, _ in scope.get("headers", []))
                if ui and message.get("status") == 401:
                    # No Basic challenge for the UI's requests: no browser login dialog.
                    headers = [(k, v) for k, v in headers if k.lower() != b"www-authenticate"]
                    message = {**message, "headers": headers}
                if value and not sets_cookie:
                    holder = Response()
                    idle = scope["app"].state.sessions.idle_seconds
                    set_cookie(holder, value, idle, scope.get("scheme") == "https")
                    headers.extend(
                        (k, v) for k, v in holder.raw_headers if k.lower() == b"set-cookie"
                    )
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, renewing)
