"""Replication: copy images between this registry and others, by rules (docs/replication.md).

Endpoints (remote registries, credentials encrypted at rest), rules (push or pull,
repository and tag globs, a destination prefix, a trigger: event, schedule or manual),
executions with retries and a per-image log; see store.py, executor.py and worker.py.
"""

from cargohold.replication.store import (
    Endpoint,
    Execution,
    ReplicationConflict,
    ReplicationInvalid,
    ReplicationStore,
    Rule,
    Task,
)
from cargohold.replication.worker import Replicator, secret_box, start_replication_workers

__all__ = [
    "Endpoint",
    "Execution",
    "ReplicationConflict",
    "ReplicationInvalid",
    "ReplicationStore",
    "Replicator",
    "Rule",
    "Task",
    "secret_box",
    "start_replication_workers",
]
