"""Adding, changing and removing proxy rules: the checks the admin API and the CLI share."""

from __future__ import annotations

import re
from typing import Any

from cargohold.errors import Conflict, NameInvalid, NameUnknown, RegistryError
from cargohold.proxy.secrets import SecretBox
from cargohold.proxy.store import MODES, WHOLE_REGISTRY, ProxyRule, ProxyStore

_NAMESPACE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_PREFIX = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
DEFAULT_TTL = 300


class RuleInvalid(RegistryError):
    """A proxy rule value that cannot work (bad URL, mode, TTL...)."""


class RuleUnknown(NameUnknown):
    pass


def check_values(values: dict[str, Any]) -> dict[str, Any]:
    url = values.get("upstream_url")
    if url is not None:
        if not re.match(r"^https?://[^/\s]+(/[^\s]*)?$", url):
            raise RuleInvalid(f"upstream URL {url!r} is not an http(s):// URL")
        values["upstream_url"] = url.rstrip("/")
    prefix = values.get("remote_prefix")
    if prefix:
        prefix = prefix.strip("/")
        if not _PREFIX.match(prefix):
            raise RuleInvalid(f"remote prefix {prefix!r} is not a repository path")
        values["remote_prefix"] = prefix
    elif "remote_prefix" in values:
        values["remote_prefix"] = None
    mode = values.get("mode")
    if mode is not None and mode not in MODES:
        raise RuleInvalid(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    ttl = values.get("tag_ttl_seconds")
    if ttl is not None and not 0 <= int(ttl) <= 365 * 86400:
        raise RuleInvalid("tag TTL must be between 0 and 31536000 seconds")
    return values


def check_namespace(namespace: str) -> str:
    if namespace != WHOLE_REGISTRY and not _NAMESPACE.match(namespace):
        raise NameInvalid(f"{namespace!r} is not a namespace name (or * for the whole registry)")
    return namespace


class ProxyRules:
    def __init__(self, store: ProxyStore, secrets: SecretBox) -> None:
        self.store = store
        self.secrets = secrets

    def list(self) -> list[ProxyRule]:
        return self.store.rules()

    def get(self, namespace: str) -> ProxyRule:
        rule = self.store.rule(check_namespace(namespace))
        if rule is None:
            raise RuleUnknown(f"namespace {namespace} is not a pull-through cache")
        return rule

    def add(
        self,
        namespace: str,
        upstream_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        remote_prefix: str | None = None,
        mirror_of: str | None = None,
        mode: str = "local-first",
        tag_ttl_seconds: int = DEFAULT_TTL,
        serve_stale_on_error: bool = True,
        serve_stale_on_404: bool = False,
        created_by: str | None = None,
    ) -> ProxyRule:
        check_namespace(namespace)
        values = check_values(
            {
                "upstream_url": upstream_url,
                "mirror_of": mirror_of or None,
                "remote_prefix": remote_prefix,
                "username": username or None,
                "password_encrypted": self.secrets.encrypt(password) if password else None,
                "mode": mode,
                "tag_ttl_seconds": tag_ttl_seconds,
                "serve_stale_on_error": serve_stale_on_error,
                "serve_stale_on_404": serve_stale_on_404,
            }
        )
        if password and not username:
            raise RuleInvalid("a password needs a username")
        if not self.store.add_rule(namespace, values, created_by):
            raise Conflict(f"namespace {namespace} is a pull-through cache already")
        return self.get(namespace)

    def update(self, namespace: str, changes: dict[str, Any]) -> ProxyRule:
        """Changes of the rule's fields; `password` (None clears it) is encrypted here."""
        self.get(namespace)
        changes = dict(changes)
        if "password" in changes:
            password = changes.pop("password")
            changes["password_encrypted"] = self.secrets.encrypt(password) if password else None
        check_values(changes)
        self.store.update_rule(namespace, changes)
        return self.get(namespace)

    def remove(self, namespace: str) -> None:
        if not self.store.remove_rule(check_namespace(namespace)):
            raise RuleUnknown(f"namespace {namespace} is not a pull-through cache")


def rule_dict(rule: ProxyRule) -> dict[str, Any]:
    """A rule as shown by the API and the CLI: the password never, only whether one is set."""
    return {
        "namespace": rule.namespace,
        "upstream_url": rule.upstream_url,
        "mirror_of": rule.mirror_host(),
        "remote_prefix": rule.remote_prefix,
        "username": rule.username,
        "has_password": rule.has_password,
        "mode": rule.mode,
        "tag_ttl_seconds": rule.tag_ttl_seconds,
        "serve_stale_on_error": rule.serve_stale_on_error,
        "serve_stale_on_404": rule.serve_stale_on_404,
        "created_at": rule.created_at.isoformat(),
        "created_by": rule.created_by,
        "updated_at": rule.updated_at.isoformat(),
    }
