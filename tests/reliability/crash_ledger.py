"""What the crash-test clients were told: acknowledged pushes, pushes in doubt, violations.

A push is *acknowledged* once the client read its 201; it must survive any later crash.
A push is *in doubt* when the connection broke before the answer: the server may or may
not have kept it, but if it shows it, it must show it whole and correct.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BlobPush:
    repository: str
    digest: str
    data: bytes
    how: str  # monolithic, post-put, chunked, mount


@dataclass(frozen=True, slots=True)
class ManifestPush:
    repository: str
    tag: str
    digest: str
    body: bytes
    media_type: str


@dataclass
class Ledger:
    lock: threading.Lock = field(default_factory=threading.Lock)
    blobs: list[BlobPush] = field(default_factory=list)
    manifests: list[ManifestPush] = field(default_factory=list)
    blobs_in_doubt: list[BlobPush] = field(default_factory=list)
    manifests_in_doubt: list[ManifestPush] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    # Upload sessions broken by a crash, by what became of them after the restart.
    sessions_resumed: int = 0
    sessions_gone: int = 0
    sessions_refused: int = 0  # resumed, then refused: the killed writer's lock outlived it

    def acknowledged_blob(self, push: BlobPush) -> None:
        with self.lock:
            self.blobs.append(push)

    def acknowledged_manifest(self, push: ManifestPush) -> None:
        with self.lock:
            self.manifests.append(push)

    def blob_in_doubt(self, push: BlobPush) -> None:
        with self.lock:
            self.blobs_in_doubt.append(push)

    def manifest_in_doubt(self, push: ManifestPush) -> None:
        with self.lock:
            self.manifests_in_doubt.append(push)

    def violation(self, message: str) -> None:
        with self.lock:
            self.violations.append(message)

    def session_resumed(self) -> None:
        with self.lock:
            self.sessions_resumed += 1

    def session_gone(self) -> None:
        with self.lock:
            self.sessions_gone += 1

    def session_refused(self) -> None:
        with self.lock:
            self.sessions_refused += 1

    def snapshot(
        self,
    ) -> tuple[list[BlobPush], list[ManifestPush], list[BlobPush], list[ManifestPush]]:
        with self.lock:
            return (
                list(self.blobs),
                list(self.manifests),
                list(self.blobs_in_doubt),
                list(self.manifests_in_doubt),
            )

    def pick_acknowledged_blob(self, index: int) -> BlobPush | None:
        with self.lock:
            if not self.blobs:
                return None
            return self.blobs[index % len(self.blobs)]
