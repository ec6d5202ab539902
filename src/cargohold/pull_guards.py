"""What a manifest pull (GET) goes through besides the lookup: the namespace's scan and
signature policies, and pull events for webhooks that subscribe to them."""

from __future__ import annotations

from dataclasses import dataclass

from cargohold.core.registry import Registry
from cargohold.events.pulls import PullEvents
from cargohold.scan.policy import PullPolicyGate
from cargohold.signatures.cosign import is_signature
from cargohold.signatures.gate import SignaturePullGate
from cargohold.storage.meta import ManifestRecord


@dataclass(frozen=True)
class PullGuards:
    scans: PullPolicyGate
    signatures: SignaturePullGate
    events: PullEvents

    def pull(
        self, registry: Registry, repository: str, reference: str, actor: str | None
    ) -> ManifestRecord:
        """The manifest, if the policies let ``actor`` pull it (Denied subclasses if not)."""
        record = registry.manifests.get(repository, reference)
        # A cosign signature manifest looks like an image to the scan policy; it is not one.
        if not is_signature(record):
            self.scans.check(
                repository, record.digest, record.media_type, record.artifact_type, record.subject
            )
        self.signatures.check(repository, record)
        self.events.pulled(repository, reference, record.digest, record.media_type, actor)
        return record
