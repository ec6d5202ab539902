"""Storage usage per registry, namespace and repository, and namespace quotas.

What the numbers mean (the store computes them, see storage/meta/sql_usage.py):

- stored bytes: each blob linked in the repository, namespace or registry counted once;
  what a quota limits. Blobs uploaded but not (yet) named by a manifest count too, until
  garbage collection removes them; manifests themselves (kept in the database) do not.
- logical bytes: over the manifests, each one's size plus the sizes of the blobs it names:
  what pulling everything would transfer without deduplication.
- shared bytes: the part of the stored bytes also linked elsewhere: in another repository
  (for a repository, and for the registry: blobs linked by several repositories), or in
  another namespace (for a namespace). Deleting the repository or namespace would not
  free them.

A quota is enforced where a namespace's stored bytes grow: a blob upload's commit and a
cross-repository mount (cross-repository retagging within a namespace never grows them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cargohold.errors import NameInvalid, NameUnknown
from cargohold.reference import validate_name
from cargohold.sizes import MAX_BYTES, parse_size
from cargohold.storage.meta import MetadataStore
from cargohold.storage.meta.base import QuotaRecord, UsageRecord


def usage_dict(record: UsageRecord) -> dict[str, int]:
    return {
        "logical_bytes": record.logical_bytes,
        "stored_bytes": record.stored_bytes,
        "shared_bytes": record.shared_bytes,
        "blobs": record.blobs,
        "manifests": record.manifests,
    }


def used_percent(stored: int, limit: int) -> float | None:
    """Stored bytes as a percentage of the limit (one decimal); None for a zero limit."""
    return None if limit <= 0 else round(stored * 100 / limit, 1)


@dataclass(frozen=True, slots=True)
class NamespaceUsage:
    usage: UsageRecord
    quota: QuotaRecord | None = None
    repositories: list[UsageRecord] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.usage.name

    @property
    def used_percent(self) -> float | None:
        if self.quota is None:
            return None
        return used_percent(self.usage.stored_bytes, self.quota.limit_bytes)

    def to_dict(self, with_repositories: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"namespace": self.name, **usage_dict(self.usage)}
        out["repository_count"] = self.usage.repositories
        out["quota_bytes"] = None if self.quota is None else self.quota.limit_bytes
        out["quota_used_percent"] = self.used_percent
        if with_repositories:
            out["repositories"] = [
                {"repository": repo.name, **usage_dict(repo)} for repo in self.repositories
            ]
        return out


@dataclass(frozen=True, slots=True)
class RegistryUsage:
    total: UsageRecord
    namespaces: list[NamespaceUsage]

    def to_dict(self) -> dict[str, Any]:
        return {
            **usage_dict(self.total),
            "repository_count": self.total.repositories,
            "namespaces": [ns.to_dict(with_repositories=False) for ns in self.namespaces],
        }


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """A namespace's quota and how much of it is used."""

    quota: QuotaRecord
    usage_bytes: int

    @property
    def remaining_bytes(self) -> int:
        return max(0, self.quota.limit_bytes - self.usage_bytes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.quota.namespace,
            "limit_bytes": self.quota.limit_bytes,
            "usage_bytes": self.usage_bytes,
            "remaining_bytes": self.remaining_bytes,
            "used_percent": used_percent(self.usage_bytes, self.quota.limit_bytes),
            "updated_by": self.quota.updated_by,
            "updated_at": self.quota.updated_at.isoformat(),
        }


def validate_namespace(namespace: str) -> str:
    validate_name(namespace)
    if "/" in namespace:
        raise NameInvalid(f"{namespace!r} is a repository; a namespace has no '/'")
    return namespace


def parse_limit(value: int | str) -> int:
    """Bytes from a number of bytes or a size text ("10GiB"); ValueError if invalid."""
    if isinstance(value, bool):
        raise ValueError("a quota is a number of bytes or a size such as 10GiB")
    limit = value if isinstance(value, int) else parse_size(value)
    if not 0 <= limit <= MAX_BYTES:
        raise ValueError(f"a quota is between 0 and {MAX_BYTES} bytes")
    return limit


class UsageService:
    def __init__(self, meta: MetadataStore) -> None:
        self._meta = meta

    # -- usage
    def registry(self) -> RegistryUsage:
        """Totals, and every namespace that has repositories or a quota, by name."""
        quotas = {quota.namespace: quota for quota in self._meta.list_quotas()}
        rows = {row.name: row for row in self._meta.namespace_usage()}
        names = sorted(set(rows) | set(quotas))
        namespaces = [
            NamespaceUsage(rows.get(name) or UsageRecord(name), quotas.get(name)) for name in names
        ]
        return RegistryUsage(self._meta.registry_usage(), namespaces)

    def namespace(self, namespace: str) -> NamespaceUsage:
        """Totals of the namespace and of each of its repositories (zeros when it has
        none: a namespace may exist before its first push)."""
        validate_namespace(namespace)
        rows = self._meta.namespace_usage(namespace)
        total = rows[0] if rows else UsageRecord(namespace)
        return NamespaceUsage(
            total,
            self._meta.get_quota(namespace),
            self._meta.repository_usage(namespace=namespace),
        )

    def repository(self, repository: str) -> UsageRecord:
        validate_name(repository)
        rows = self._meta.repository_usage(repository=repository)
        if not rows:
            raise NameUnknown(f"repository {repository} is not known")
        return rows[0]

    # -- quotas
    def quota(self, namespace: str) -> QuotaStatus | None:
        validate_namespace(namespace)
        quota = self._meta.get_quota(namespace)
        if quota is None:
            return None
        return QuotaStatus(quota, self._stored(namespace))

    def set_quota(self, namespace: str, limit: int | str, actor: str | None) -> QuotaStatus:
        """Set or change the quota (ValueError for an invalid limit). A limit below the
        current usage is accepted: new blobs are refused until usage falls below it."""
        validate_namespace(namespace)
        quota = self._meta.set_quota(namespace, parse_limit(limit), actor)
        return QuotaStatus(quota, self._stored(namespace))

    def remove_quota(self, namespace: str) -> bool:
        validate_namespace(namespace)
        return self._meta.remove_quota(namespace)

    def _stored(self, namespace: str) -> int:
        rows = self._meta.namespace_usage(namespace)
        return rows[0].stored_bytes if rows else 0
