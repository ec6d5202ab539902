"""A remote registry to replicate to or from: the pull-through cache's Upstream client
(Docker token auth, Basic auth, manifest and blob reads), plus what replication needs
beyond reading: tag and catalog listings, referrers, and pushing (blob HEAD, cross-
repository mount, monolithic upload, manifest PUT, DELETE).

Requests ask for `pull,push` on the repository. A mount asks for a token that also
covers `pull` on the repository the blob is mounted from (two `scope` parameters, as the
Docker token specification says); without it a registry answers with an upload session.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin

import httpx

from cargohold import __version__
from cargohold.proxy.errors import UpstreamDenied, UpstreamNotFound, UpstreamUnavailable
from cargohold.proxy.upstream import (
    _CHALLENGE_PARAM,
    ACCEPT,
    Upstream,
    UpstreamManifest,
    _basic,
    _raise_for,
)

__all__ = [
    "RemoteRegistry",
    "UpstreamDenied",
    "UpstreamManifest",
    "UpstreamNotFound",
    "UpstreamUnavailable",
]

_SCOPE_PARAM = re.compile(r',?\s*scope="[^"]*"')
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
USER_AGENT = f"cargohold-replication/{__version__}"


def _push_scope(name: str) -> str:
    return f"repository:{name}:pull,push"


class RemoteRegistry(Upstream):
    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        *,
        insecure: bool = False,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(url, username, password, timeout)
        self._client.close()
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=True,
            verify=not insecure,
            headers={"User-Agent": USER_AGENT},
        )
        self._bearer: dict[str, str] | None = None  # realm and service of the last challenge

    # -- requests: like Upstream._send, with a body, our scope, and any status back
    def call(
        self,
        method: str,
        path: str,
        name: str,
        *,
        content: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
        params: Any = None,
        stream: bool = False,
        auth: dict[str, str] | None = None,
        scope: str | None = None,
    ) -> httpx.Response:
        """One request with authentication; the response, whatever its status (read
        unless ``stream``). A streamed body must not meet a 401: authenticate first."""
        scope = scope or _push_scope(name)
        url = path if path.startswith(("http://", "https://")) else self.url + path
        extra = dict(headers or {})
        if "/manifests/" in url and method in ("GET", "HEAD"):
            extra.setdefault("Accept", ACCEPT)
        response = self._once(
            method, url, {**extra, **(auth or self._auth_header(scope))}, content, params, stream
        )
        if response.status_code == 401 and (content is None or isinstance(content, bytes)):
            challenge = response.headers.get("www-authenticate", "")
            response.close()
            if challenge.lower().startswith("bearer"):
                self._bearer = dict(_CHALLENGE_PARAM.findall(challenge))
            # Our scope, not the challenge's: one token serves every call on the repository.
            fresh = self._authenticate(_SCOPE_PARAM.sub("", challenge), scope)
            response = self._once(method, url, {**extra, **fresh}, content, params, stream)
        return response

    def _once(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | Iterable[bytes] | None,
        params: Any,
        stream: bool,
    ) -> httpx.Response:
        request = self._client.build_request(
            method, url, headers=headers, content=content, params=params
        )
        try:
            response = self._client.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(
                f"registry {self.url} is unreachable: {exc.__class__.__name__}: {exc}",
                detail={"upstream": self.url},
            ) from None
        return response

    def check(self, response: httpx.Response, method: str) -> httpx.Response:
        try:
            _raise_for(response, method, str(response.request.url))
        except UpstreamDenied as exc:
            raise UpstreamDenied(
                f"{self.url} refused {method} {response.request.url.path} with "
                f"{response.status_code} (check the endpoint's credentials and permissions)"
                + _error_text(response),
                detail=exc.detail,
            ) from None
        except UpstreamUnavailable as exc:
            raise UpstreamUnavailable(str(exc) + _error_text(response), detail=exc.detail) from None
        return response

    # -- reading
    def ping(self) -> None:
        """Reach /v2/ (any answer but 5xx will do: 401 is a registry asking for a token)."""
        response = self._once("GET", self.url + "/v2/", {}, None, None, False)
        if response.status_code >= 500:
            raise UpstreamUnavailable(f"{self.url}/v2/ answered {response.status_code}")

    def _pages(self, path: str, name: str, key: str, scope: str | None = None) -> Iterator[str]:
        url: str | None = path
        while url:
            params = {"n": 1000} if url == path else None
            response = self.call("GET", url, name, params=params, scope=scope)
            if response.status_code == 404:
                raise UpstreamNotFound(url)
            self.check(response, "GET")
            yield from response.json().get(key) or []
            match = _LINK_NEXT.search(response.headers.get("link", ""))
            url = urljoin(self.url + path, match.group(1)) if match else None

    def tags(self, name: str) -> list[str]:
        try:
            return list(self._pages(f"/v2/{name}/tags/list", name, "tags"))
        except UpstreamNotFound:
            return []

    def catalog(self) -> list[str]:
        scope = "registry:catalog:*"
        if not self._auth_header(scope):
            self._prime(scope)  # a catalog answers anonymous callers with an empty list
        return list(self._pages("/v2/_catalog", "", "repositories", scope))

    def _prime(self, scope: str) -> None:
        """Authenticate for ``scope`` ahead of a request that would not ask for it."""
        response = self._once("GET", self.url + "/v2/", {}, None, None, False)
        challenge = response.headers.get("www-authenticate", "")
        if response.status_code == 401 and self._credentials:
            if challenge.lower().startswith("bearer"):
                self._bearer = dict(_CHALLENGE_PARAM.findall(challenge))
            self._authenticate(_SCOPE_PARAM.sub("", challenge), scope)

    def referrers(self, name: str, digest: str) -> list[str]:
        """Digests of the manifests whose subject is ``digest`` (empty when the registry
        has no referrers API)."""
        response = self.call("GET", f"/v2/{name}/referrers/{digest}", name)
        if response.status_code in (400, 404, 405):
            return []
        self.check(response, "GET")
        return [str(d["digest"]) for d in response.json().get("manifests") or []]

    def manifest(self, name: str, reference: str) -> UpstreamManifest:
        response = self.check(self.call("GET", f"/v2/{name}/manifests/{reference}", name), "GET")
        return UpstreamManifest(
            response.content,
            response.headers.get("content-type", "").split(";")[0].strip() or None,
            response.headers.get("docker-content-digest"),
        )

    def manifest_digest(self, name: str, reference: str) -> str | None:
        """The digest ``reference`` names there; None when it names nothing."""
        response = self.call("HEAD", f"/v2/{name}/manifests/{reference}", name)
        if response.status_code == 404:
            return None
        return self.check(response, "HEAD").headers.get("docker-content-digest")

    @contextmanager
    def open_blob(self, name: str, digest: str) -> Iterator[Iterator[bytes]]:
        response = self.call("GET", f"/v2/{name}/blobs/{digest}", name, stream=True)
        try:
            self.check(response, "GET")
            yield response.iter_bytes(1 << 20)
        finally:
            response.close()

    # -- writing
    def has_blob(self, name: str, digest: str) -> bool:
        response = self.call("HEAD", f"/v2/{name}/blobs/{digest}", name)
        if response.status_code == 404:
            return False
        self.check(response, "HEAD")
        return True

    def mount(self, name: str, digest: str, source: str) -> str | None:
        """Try a cross-repository mount; None when mounted, else the upload session URL
        the registry opened instead."""
        response = self.call(
            "POST",
            f"/v2/{name}/blobs/uploads/",
            name,
            params={"mount": digest, "from": source},
            auth=self._mount_auth(name, source),
        )
        if response.status_code == 201:
            return None
        self.check(response, "POST")
        return urljoin(self.url + "/", response.headers["location"])

    def _mount_auth(self, name: str, source: str) -> dict[str, str] | None:
        """A token for pull,push on ``name`` and pull on ``source``, from the token
        service of the last Bearer challenge; None: the usual header."""
        if self._bearer is None or not self._bearer.get("realm"):
            return None
        key = f"{_push_scope(name)} repository:{source}:pull"
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return {"Authorization": f"Bearer {cached[0]}"}
        query = [("scope", _push_scope(name)), ("scope", f"repository:{source}:pull")]
        if "service" in self._bearer:
            query.append(("service", self._bearer["service"]))
        headers = {"Authorization": _basic(*self._credentials)} if self._credentials else {}
        try:
            response = self._client.get(self._bearer["realm"], params=query, headers=headers)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        data = response.json()
        token = data.get("token") or data.get("access_token")
        if not token:
            return None
        expires_in = int(data.get("expires_in") or 60)
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + max(expires_in - 10, 1))
        return {"Authorization": f"Bearer {token}"}

    def start_upload(self, name: str) -> str:
        response = self.check(self.call("POST", f"/v2/{name}/blobs/uploads/", name), "POST")
        return urljoin(self.url + "/", response.headers["location"])

    def finish_upload(
        self, name: str, location: str, digest: str, size: int, chunks: Iterable[bytes]
    ) -> None:
        """Send the whole blob with the closing PUT (a monolithic upload)."""
        separator = "&" if "?" in location else "?"
        response = self.call(
            "PUT",
            f"{location}{separator}digest={digest}",
            name,
            content=chunks,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
        self.check(response, "PUT")

    def put_manifest(self, name: str, reference: str, body: bytes, media_type: str) -> None:
        response = self.call(
            "PUT",
            f"/v2/{name}/manifests/{reference}",
            name,
            content=body,
            headers={"Content-Type": media_type},
        )
        self.check(response, "PUT")

    def delete_tag(self, name: str, tag: str) -> bool:
        """Delete a tag; by digest when the registry refuses tag deletes (that removes
        the manifest with every tag naming it). False when the tag is not there."""
        scope = f"repository:{name}:delete"
        response = self.call("DELETE", f"/v2/{name}/manifests/{tag}", name, scope=scope)
        if response.status_code == 404:
            return False
        if response.status_code in (400, 405):
            digest = self.manifest_digest(name, tag)
            if digest is None:
                return False
            response = self.call("DELETE", f"/v2/{name}/manifests/{digest}", name, scope=scope)
            if response.status_code == 404:
                return False
        self.check(response, "DELETE")
        return True


def _error_text(response: httpx.Response) -> str:
    try:
        response.read()
        errors = response.json().get("errors") or []
    except Exception:
        return ""
    texts = [f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict)]
    return f" ({'; '.join(texts)[:300]})" if texts else ""
