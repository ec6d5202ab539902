"""What namespaces trust and require: public keys, signature pull policies, promotion gates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select, update

from cargohold.errors import Conflict
from cargohold.signatures.cosign import TrustedKey, key_fingerprint
from cargohold.storage.meta import models as m
from cargohold.storage.meta.sqlbase import SqlBase, now

SEVERITIES = ("critical", "high", "medium", "low")


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    namespace: str
    name: str
    public_key: str
    fingerprint: str
    created_at: datetime
    created_by: str | None

    def trusted(self) -> TrustedKey:
        return TrustedKey(self.name, self.public_key)


@dataclass(frozen=True, slots=True)
class Gates:
    """What an image must satisfy to be promoted into ``namespace``."""

    namespace: str
    max_severity: str | None  # refuse findings at or above; also refuse unscanned images
    require_signature: bool
    require_immutable: bool
    updated_at: datetime
    updated_by: str | None


class SignatureStore(SqlBase):
    # -- trusted keys
    def add_key(self, namespace: str, name: str, pem: str, actor: str | None) -> KeyRecord:
        """Trust a public key (KeyInvalid for one that is not); Conflict if the name is
        taken in the namespace."""
        fingerprint = key_fingerprint(pem)  # validates the key
        record = KeyRecord(namespace, name, pem.strip() + "\n", fingerprint, now(), actor)
        k = m.trusted_keys
        with self._write() as conn:
            taken = conn.execute(
                select(k.c.name).where(k.c.namespace == namespace, k.c.name == name)
            ).first()
            if taken is not None:
                raise Conflict(f"namespace {namespace} already trusts a key named {name!r}")
            conn.execute(
                insert(k).values(
                    namespace=namespace,
                    name=name,
                    public_key=record.public_key,
                    fingerprint=fingerprint,
                    created_at=record.created_at,
                    created_by=actor,
                )
            )
        return record

    def keys(self, namespace: str) -> list[KeyRecord]:
        k = m.trusted_keys
        with self._read() as conn:
            rows = conn.execute(
                select(k).where(k.c.namespace == namespace).order_by(k.c.name)
            ).all()
        return [
            KeyRecord(
                r.namespace,
                r.name,
                r.public_key,
                r.fingerprint,
                _aware(r.created_at),
                r.created_by,
            )
            for r in rows
        ]

    def remove_key(self, namespace: str, name: str) -> bool:
        k = m.trusted_keys
        with self._write() as conn:
            return bool(
                conn.execute(delete(k).where(k.c.namespace == namespace, k.c.name == name)).rowcount
            )

    # -- signature pull policy
    def require_signatures(self, namespace: str, required: bool, actor: str | None) -> bool:
        """Turn the namespace's signature pull policy on or off; whether it changed."""
        p = m.signature_policies
        with self._write() as conn:
            present = conn.execute(select(p.c.namespace).where(p.c.namespace == namespace)).first()
            if required and present is None:
                conn.execute(
                    insert(p).values(namespace=namespace, updated_at=now(), updated_by=actor)
                )
                return True
            if not required and present is not None:
                conn.execute(delete(p).where(p.c.namespace == namespace))
                return True
        return False

    def signatures_required(self, namespace: str) -> bool:
        p = m.signature_policies
        with self._read() as conn:
            return (
                conn.execute(select(p.c.namespace).where(p.c.namespace == namespace)).first()
                is not None
            )

    # -- promotion gates
    def set_gates(
        self,
        namespace: str,
        max_severity: str | None,
        require_signature: bool,
        require_immutable: bool,
        actor: str | None,
    ) -> Gates:
        if max_severity is not None and max_severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
        g = m.promotion_gates
        values = {
            "max_severity": max_severity,
            "require_signature": require_signature,
            "require_immutable": require_immutable,
            "updated_at": now(),
            "updated_by": actor,
        }
        with self._write() as conn:
            changed = conn.execute(update(g).where(g.c.namespace == namespace).values(**values))
            if not changed.rowcount:
                conn.execute(insert(g).values(namespace=namespace, **values))
        return Gates(namespace, **values)  # type: ignore[arg-type]

    def gates(self, namespace: str) -> Gates | None:
        g = m.promotion_gates
        with self._read() as conn:
            row = conn.execute(select(g).where(g.c.namespace == namespace)).first()
        if row is None:
            return None
        return Gates(
            row.namespace,
            row.max_severity,
            bool(row.require_signature),
            bool(row.require_immutable),
            _aware(row.updated_at),
            row.updated_by,
        )

    def remove_gates(self, namespace: str) -> bool:
        g = m.promotion_gates
        with self._write() as conn:
            return bool(conn.execute(delete(g).where(g.c.namespace == namespace)).rowcount)

    # -- the index a platform manifest belongs to
    def parent_indexes(self, repository: str, digest: str) -> list[str]:
        """Digests of the manifests of ``repository`` that list ``digest`` as a child."""
        c, mf, r = m.manifest_children, m.manifests, m.repositories
        with self._read() as conn:
            return list(
                conn.execute(
                    select(mf.c.digest)
                    .join(c, c.c.manifest_id == mf.c.id)
                    .join(r, r.c.id == mf.c.repository_id)
                    .where(r.c.name == repository, c.c.child_digest == digest)
                    .limit(20)
                ).scalars()
            )
