"""containerd's `?ns=` mirror parameter on /v2, mapped onto the pull-through cache's rules."""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from cargohold.proxy.service import ProxyService
from cargohold.proxy.store import WHOLE_REGISTRY

_V2_PATH = re.compile(r"^/v2/(?P<name>.+)/(?P<kind>manifests|blobs|tags|referrers)/(?P<rest>.*)$")


class MirrorMiddleware:
    """containerd, configured with this registry as a mirror of docker.io, asks for
    `/v2/library/alpine/manifests/3?ns=docker.io`. When a proxy rule mirrors that host,
    the path becomes the rule's namespace + name (`/v2/hub/library/alpine/...`) before
    authentication and routing, so permissions, storage and logs see the cached name."""

    def __init__(self, app: ASGIApp, proxy: ProxyService) -> None:
        self.app = app
        self.proxy = proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and b"ns=" in scope.get("query_string", b""):
            scope = self._rewrite(scope)
        await self.app(scope, receive, send)

    def _rewrite(self, scope: Scope) -> Scope:
        match = _V2_PATH.match(scope["path"])
        if match is None:
            return scope
        hosts = parse_qs(scope["query_string"].decode("latin-1")).get("ns")
        if not hosts:
            return scope
        rule = self.proxy.rule_for_mirror(hosts[0])
        if rule is None or rule.namespace == WHOLE_REGISTRY:
            return scope
        name = match["name"]
        if name.split("/", 1)[0] == rule.namespace:
            return scope
        path = f"/v2/{rule.namespace}/{name}/{match['kind']}/{match['rest']}"
        return {**scope, "path": path, "raw_path": path.encode()}
