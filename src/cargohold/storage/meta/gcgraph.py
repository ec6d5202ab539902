"""The reference graph garbage collection marks, and the marking itself (no I/O).

Marking works on a snapshot; the sweep deletes only what marking found, and every delete
re-checks its condition in the database, so a reference made after the snapshot wins.
On a registry nobody writes to, a dry run reports exactly what a real run removes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ManifestNode:
    id: int
    repository_id: int
    digest: str
    subject: str | None
    size: int
    created_at: datetime
    tagged: bool


@dataclass(frozen=True, slots=True)
class LinkNode:
    repository_id: int
    digest: str
    created_at: datetime


@dataclass(slots=True)
class GcGraph:
    repositories: dict[int, str]
    manifests: list[ManifestNode]
    children: dict[int, set[str]]  # manifest id -> digests of the manifests it lists
    blob_refs: dict[int, set[str]]  # manifest id -> digests of the blobs it names
    links: list[LinkNode]
    blobs: dict[str, tuple[int, datetime]]  # digest -> (size, created_at)
    in_history: dict[int, set[str]]  # repository id -> digests tag history keeps alive


@dataclass(slots=True)
class Garbage:
    manifests: dict[int, list[ManifestNode]] = field(default_factory=dict)  # by repository
    links: dict[int, list[str]] = field(default_factory=dict)  # repository id -> digests
    blobs: dict[str, int] = field(default_factory=dict)  # digest -> size

    @property
    def manifest_count(self) -> int:
        return sum(len(nodes) for nodes in self.manifests.values())

    @property
    def link_count(self) -> int:
        return sum(len(digests) for digests in self.links.values())

    @property
    def blob_bytes(self) -> int:
        return sum(self.blobs.values())


def mark(graph: GcGraph, older_than: datetime, delete_untagged: bool) -> Garbage:
    """What no live reference reaches and is older than the grace period.

    Live manifests: tagged ones, ones tag history names within its window, ones younger
    than the grace period (a push in flight uploads an index's children first), and every
    manifest when untagged manifests are kept; then whatever a live index lists, and every
    referrer (signature, SBOM) of a live subject. Live links: those a live manifest of the
    repository names, and young ones (a push in flight uploads layers before its
    manifest). Live blobs: those with a live link.
    """
    by_repo_digest: dict[tuple[int, str], ManifestNode] = {}
    referrers: dict[tuple[int, str], list[ManifestNode]] = defaultdict(list)
    for node in graph.manifests:
        by_repo_digest[(node.repository_id, node.digest)] = node
        if node.subject is not None:
            referrers[(node.repository_id, node.subject)].append(node)

    live: set[int] = set()
    todo: list[ManifestNode] = []
    for node in graph.manifests:
        kept = graph.in_history.get(node.repository_id, set())
        if (
            not delete_untagged
            or node.tagged
            or node.created_at >= older_than
            or node.digest in kept
        ):
            live.add(node.id)
            todo.append(node)
    while todo:
        node = todo.pop()
        reached = [
            by_repo_digest.get((node.repository_id, child))
            for child in graph.children.get(node.id, ())
        ]
        reached += referrers.get((node.repository_id, node.digest), [])
        for other in reached:
            if other is not None and other.id not in live:
                live.add(other.id)
                todo.append(other)

    garbage = Garbage()
    live_links: set[tuple[int, str]] = set()
    for node in graph.manifests:
        if node.id in live:
            live_links.update((node.repository_id, d) for d in graph.blob_refs.get(node.id, ()))
        else:
            garbage.manifests.setdefault(node.repository_id, []).append(node)

    # A blob a live manifest names stays, even if its link was deleted through the API.
    linked: set[str] = {digest for _, digest in live_links}
    for link in graph.links:
        key = (link.repository_id, link.digest)
        if key in live_links or link.created_at >= older_than:
            linked.add(link.digest)
        else:
            garbage.links.setdefault(link.repository_id, []).append(link.digest)
    for digest, (size, created_at) in graph.blobs.items():
        if digest not in linked and created_at < older_than:
            garbage.blobs[digest] = size
    return garbage
