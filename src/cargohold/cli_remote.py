"""Commands that ask a running cargohold server (its admin API) rather than open the stores.

The standard library's urllib, not httpx: a command makes one request, and importing
httpx takes longer than most of these requests do.
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

PASSWORD_ENV = "CARGOHOLD_PASSWORD"


class RemoteError(Exception):
    """A request to the server failed; the message says what to do about it."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def server_base(url: str) -> str:
    """The server's address without a trailing slash; RemoteError unless http(s)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RemoteError(f"--server must be an http:// or https:// address, not {url!r}")
    return url.rstrip("/")


def password_for(username: str) -> str:
    """The password from the environment, else asked for when someone is at the keyboard."""
    password = os.environ.get(PASSWORD_ENV)
    if password is not None:
        return password
    if not sys.stdin.isatty():
        raise RemoteError(f"set {PASSWORD_ENV} to {username}'s password (no terminal to ask on)")
    return getpass.getpass(f"Password for {username}: ")


def admin_call(
    server: str,
    username: str,
    password: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    timeout: float | None = None,
) -> Any:
    """Call ``/api{path}`` on ``server`` as ``username``; the decoded JSON answer."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    request = urllib.request.Request(
        f"{server_base(server)}/api{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={
            "Authorization": f"Basic {token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise RemoteError(_refusal(exc.code, exc.read(), username), exc.code) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RemoteError(
            f"cannot reach {server}: {reason}; is the server running there?"
        ) from None


def _refusal(status: int, raw: bytes, username: str) -> str:
    message = _error_message(raw) or f"HTTP {status}"
    if status == 401:
        return f"{message}: check the username ({username}) and {PASSWORD_ENV}"
    if status == 403:
        return f"{message}: sign in as a registry admin"
    return message


def _error_message(raw: bytes) -> str | None:
    """The message of the API's error body ({"errors": [{"code", "message"}]})."""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace").strip()[:200] or None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message") or errors[0].get("code"))
        if "detail" in body:
            return str(body["detail"])
    return None
