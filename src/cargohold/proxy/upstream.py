"""An upstream registry's /v2 API over httpx: Docker token auth, Basic auth, manifests, blobs.

One client per rule, reused across requests (connection pooling). On a 401 the
`WWW-Authenticate` challenge says what to do: `Bearer realm=...,service=...,scope=...`
fetches a token from the realm (with the rule's credentials, when it has them) and caches it
per scope until it expires; `Basic` sends the credentials. Anything still refused is
UpstreamDenied; connection failures, timeouts, 429 and 5xx are UpstreamUnavailable.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from cargohold.mediatypes import MANIFEST_TYPES
from cargohold.proxy.errors import UpstreamDenied, UpstreamNotFound, UpstreamUnavailable

ACCEPT = ", ".join(sorted(MANIFEST_TYPES))
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True, slots=True)
class UpstreamManifest:
    body: bytes
    media_type: str | None
    digest: str | None  # Docker-Content-Digest, when the upstream sent it


class Upstream:
    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._credentials = (username, password or "") if username else None
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=True,  # blob CDNs; httpx drops Authorization across origins
            headers={"User-Agent": "cargohold-proxy"},
        )
        self._tokens: dict[str, tuple[str, float]] = {}
        self._basic = False
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    # -- the /v2 calls
    def get_manifest(self, name: str, reference: str) -> UpstreamManifest:
        with self._send("GET", f"/v2/{name}/manifests/{reference}", name) as response:
            body = response.read()
            return UpstreamManifest(
                body,
                response.headers.get("content-type", "").split(";")[0].strip() or None,
                response.headers.get("docker-content-digest"),
            )

    def head_manifest(self, name: str, reference: str) -> str | None:
        """The digest the reference has upstream (None if the upstream did not say)."""
        with self._send("HEAD", f"/v2/{name}/manifests/{reference}", name) as response:
            return response.headers.get("docker-content-digest")

    @contextmanager
    def blob(self, name: str, digest: str) -> Iterator[httpx.Response]:
        """The open streaming response for a blob; read it with iter_bytes()."""
        with self._send("GET", f"/v2/{name}/blobs/{digest}", name) as response:
            yield response

    # -- requests with authentication
    @contextmanager
    def _send(self, method: str, path: str, name: str) -> Iterator[httpx.Response]:
        scope = f"repository:{name}:pull"
        response = self._request(method, path, self._auth_header(scope))
        try:
            if response.status_code == 401:
                challenge = response.headers.get("www-authenticate", "")
                response.close()
                response = self._request(method, path, self._authenticate(challenge, scope))
            _raise_for(response, method, self.url + path)
            yield response
        finally:
            response.close()

    def _request(self, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
        headers = {**headers, "Accept": ACCEPT} if "/manifests/" in path else headers
        request = self._client.build_request(method, self.url + path, headers=headers)
        try:
            return self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(
                f"upstream {self.url} is unreachable: {exc.__class__.__name__}: {exc}",
                detail={"upstream": self.url},
            ) from None

    def _auth_header(self, scope: str) -> dict[str, str]:
        with self._lock:
            token = self._tokens.get(scope)
            if token is not None and token[1] > time.monotonic():
                return {"Authorization": f"Bearer {token[0]}"}
            if self._basic and self._credentials:
                return {"Authorization": _basic(*self._credentials)}
        return {}

    def _authenticate(self, challenge: str, scope: str) -> dict[str, str]:
        kind = challenge.split(" ", 1)[0].lower()
        if kind == "basic":
            if not self._credentials:
                raise UpstreamDenied(
                    f"upstream {self.url} asks for credentials and none are configured",
                    detail={"upstream": self.url},
                )
            self._basic = True
            return {"Authorization": _basic(*self._credentials)}
        if kind != "bearer":
            raise UpstreamDenied(
                f"upstream {self.url} answered 401 with an unsupported challenge {challenge!r}",
                detail={"upstream": self.url},
            )
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.get("realm")
        if not realm:
            raise UpstreamDenied(f"upstream {self.url} sent a Bearer challenge without realm")
        query = {"scope": params.get("scope", scope)}
        if "service" in params:
            query["service"] = params["service"]
        headers = {"Authorization": _basic(*self._credentials)} if self._credentials else {}
        try:
            response = self._client.get(realm, params=query, headers=headers)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(
                f"token service {realm} of upstream {self.url} is unreachable: {exc}",
                detail={"upstream": self.url},
            ) from None
        if response.status_code in (401, 403):
            raise UpstreamDenied(
                f"upstream {self.url} refused the configured credentials "
                f"(token service answered {response.status_code})",
                detail={"upstream": self.url, "status": response.status_code},
            )
        if response.status_code >= 400:
            raise UpstreamUnavailable(
                f"token service {realm} of upstream {self.url} answered {response.status_code}",
                detail={"upstream": self.url, "status": response.status_code},
            )
        data = response.json()
        token = data.get("token") or data.get("access_token")
        if not token:
            raise UpstreamUnavailable(f"token service {realm} sent no token")
        expires_in = int(data.get("expires_in") or 60)
        with self._lock:
            # Renewed a little early: a token must not expire on the way.
            self._tokens[scope] = (token, time.monotonic() + max(expires_in - 10, 1))
        return {"Authorization": f"Bearer {token}"}


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _raise_for(response: httpx.Response, method: str, url: str) -> None:
    status = response.status_code
    if status < 300:
        return
    if status == 404:
        raise UpstreamNotFound(url)
    if status in (401, 403):
        raise UpstreamDenied(
            f"upstream refused {method} {url} with {status} (check the proxy rule's credentials)",
            detail={"status": status},
        )
    if status == 429 or status >= 500:
        raise UpstreamUnavailable(
            f"upstream answered {status} to {method} {url}", detail={"status": status}
        )
    raise UpstreamUnavailable(
        f"upstream answered {status} to {method} {url}", detail={"status": status}
    )
