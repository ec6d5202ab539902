"""Tables of the metadata store. Migrations in migrations/versions must match these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

DIGEST = String(200)

repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

blobs = Table(
    "blobs",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

repository_blobs = Table(
    "repository_blobs",
    metadata,
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("digest", DIGEST, ForeignKey("blobs.digest"), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(None, "digest"),  # migration 0005: "is this blob linked anywhere?" for GC
)

manifests = Table(
    "manifests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("digest", DIGEST, nullable=False),
    Column("media_type", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("artifact_type", String(255), nullable=True),
    Column("subject_digest", DIGEST, nullable=True),
    Column("annotations", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("repository_id", "digest"),
    Index(None, "repository_id", "subject_digest"),
)

manifest_blobs = Table(
    "manifest_blobs",
    metadata,
    Column(
        "manifest_id", Integer, ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("digest", DIGEST, ForeignKey("blobs.digest"), primary_key=True),
    Index(None, "digest"),
)

manifest_children = Table(
    "manifest_children",
    metadata,
    Column(
        "manifest_id", Integer, ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("child_digest", DIGEST, primary_key=True),
)

tags = Table(
    "tags",
    metadata,
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("name", String(128), primary_key=True),
    Column("manifest_id", Integer, ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index(None, "manifest_id"),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("repository", String(255), nullable=False),
    Column("algorithm", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# -- access control (migration 0002)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("is_admin", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

namespaces = Table(
    "namespaces",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # "user" or "org"
    Column("public", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

repository_visibility = Table(
    "repository_visibility",
    metadata,
    Column("repository", String(255), primary_key=True),
    Column("public", Boolean, nullable=False),
)

teams = Table(
    "teams",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "namespace_id", Integer, ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(64), nullable=False),
    UniqueConstraint("namespace_id", "name"),
)

team_members = Table(
    "team_members",
    metadata,
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)

# A role for a user or a team in a namespace, or in one repository of it ("" = all).
grants = Table(
    "grants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "namespace_id", Integer, ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False
    ),
    Column("repository", String(255), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=True),
    Column("role", String(16), nullable=False),
    UniqueConstraint("namespace_id", "repository", "user_id", "team_id"),
)

robots = Table(
    "robots",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "namespace_id", Integer, ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(64), nullable=False),
    Column("secret_hash", String(128), nullable=False),
    Column("actions", String(64), nullable=False),  # comma-separated
    Column("repositories", Text, nullable=False),  # JSON list; empty = the whole namespace
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("namespace_id", "name"),
)

access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("secret_hash", String(128), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("user_id", "name"),
)

# -- audit log (migration 0003)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("address", String(64), nullable=True),
    Column("action", String(32), nullable=False),
    Column("target", String(512), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("detail", Text, nullable=True),
    Index(None, "at"),
    Index(None, "actor"),
    Index(None, "target"),
)

# -- versioning (migration 0004)

# Every change of what a tag names, kept after the tag itself is gone.
tag_events = Table(
    "tag_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("tag", String(128), nullable=False),
    Column("action", String(16), nullable=False),  # created | moved | deleted
    Column("old_digest", DIGEST, nullable=True),
    Column("new_digest", DIGEST, nullable=True),
    Column("via", String(16), nullable=False),  # push | delete | rollback | retag | retention
    Column("actor", String(255), nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Index(None, "repository_id", "tag", "id"),
    Index(None, "at"),
)

# A tag matching `pattern` in the namespace (repository "") or one repository never moves.
immutable_tag_rules = Table(
    "immutable_tag_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("namespace", String(255), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("pattern", String(128), nullable=False),
    Column("created_by", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("namespace", "repository", "pattern"),
)

# -- garbage collection runs (migration 0005)

gc_runs = Table(
    "gc_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("trigger", String(32), nullable=False),  # cli | api | schedule
    Column("dry_run", Boolean, nullable=False),
    Column("report", Text, nullable=False),  # the JSON report
    Index(None, "started_at"),
)

# -- retention policies and quotas (migration 0006)

# Tags matching `tag_pattern` in the namespace (repository "") or one repository are
# removed unless among the `keep_last` most recently pushed, or pushed or pulled within
# `keep_days`; immutable tags are never removed.
retention_policies = Table(
    "retention_policies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("namespace", String(255), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("tag_pattern", String(128), nullable=False),
    Column("keep_last", Integer, nullable=True),
    Column("keep_days", Integer, nullable=True),
    Column("created_by", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("namespace", "repository", "tag_pattern"),
)

namespace_quotas = Table(
    "namespace_quotas",
    metadata,
    Column("namespace", String(255), primary_key=True),
    Column("limit_bytes", BigInteger, nullable=False),
    Column("updated_by", String(255), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# -- vulnerability advisories (migration 0007), written by `cargohold vulndb import`

# One OSV record, replaced by id when an import brings it again (the newer `modified` wins).
advisories = Table(
    "advisories",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("modified", DateTime(timezone=True), nullable=False),
    Column("published", DateTime(timezone=True), nullable=True),
    Column("withdrawn", DateTime(timezone=True), nullable=True),  # set: never matched
    Column("summary", Text, nullable=True),
    Column("details", Text, nullable=True),  # trimmed to 4,000 characters
    Column("aliases", Text, nullable=False),  # JSON list, e.g. the CVE ids
    Column("upstream", Text, nullable=False),  # JSON list
    Column("severity", String(16), nullable=False),  # critical | high | medium | low | unknown
    Column("cvss_vector", String(255), nullable=True),
    Column("cvss_score_x10", Integer, nullable=True),  # base score times ten: 98 is 9.8
    Column("link", Text, nullable=True),  # the advisory's own page
    Column("refs", Text, nullable=False),  # JSON list of {"type", "url"}
    Column("raw", Text, nullable=False),  # the record as imported (JSON)
    Column("imported_at", DateTime(timezone=True), nullable=False),
)

# What one advisory affects: a package of an ecosystem ("Debian:11", "PyPI", "Go"...), by the
# name the ecosystem's advisories use (Debian source package, PEP 503 name...). `ranges` holds
# the OSV ranges that can be evaluated, events checked and sorted; `versions` the listed ones.
advisory_affected = Table(
    "advisory_affected",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "advisory_id",
        String(255),
        ForeignKey("advisories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("ecosystem", String(100), nullable=False),
    Column("package", String(512), nullable=False),
    Column("ranges", Text, nullable=False),  # JSON list of {"type", "events"}
    Column("versions", Text, nullable=False),  # JSON list
    Index(None, "ecosystem", "package"),
    Index(None, "advisory_id"),
)

vulndb_imports = Table(
    "vulndb_imports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    Column("source", String(255), nullable=False),  # the file or folder name imported
    Column("counts", Text, nullable=False),  # JSON: records, per ecosystem, skipped, ...
    Index(None, "imported_at"),
)

# -- vulnerability scan results (migration 0008), written by `cargohold scan run`

# One scan of one manifest: the report as JSON, and which advisory import it was matched
# against (the newest `vulndb_imports` row at the time; none when nothing was imported).
scan_results = Table(
    "scan_results",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("repository", String(255), nullable=False),
    Column("manifest_digest", DIGEST, nullable=False),
    Column("scanned_at", DateTime(timezone=True), nullable=False),
    Column("vulndb_import_id", Integer, nullable=True),
    Column("vulndb_imported_at", DateTime(timezone=True), nullable=True),
    Column("report", Text, nullable=False),  # JSON: ScanReport.to_dict()
    # migration 0009: the summary shown on tag listings, without reading whole reports
    Column("status", String(20), nullable=True),
    Column("severity_counts", Text, nullable=True),  # JSON: {"critical": n, ...}
    Index(None, "repository", "manifest_digest", "scanned_at"),
)

# -- scan queue (migration 0009): jobs for the background scanner

# One job: scan a manifest (kind push/manual/advisories) or, with no repository, enqueue a
# rescan of every image (kind rescan-all). Queued in the transaction that stores the
# manifest, claimed with a lease, so a worker that dies mid-scan leaves a job another
# worker takes once the lease runs out.
scan_jobs = Table(
    "scan_jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("repository", String(255), nullable=True),
    Column("manifest_digest", DIGEST, nullable=True),
    Column("kind", String(20), nullable=False),
    Column("state", String(10), nullable=False),  # queued | running | done | failed
    Column("attempts", Integer, nullable=False),
    Column("enqueued_at", DateTime(timezone=True), nullable=False),
    Column("not_before", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("worker", String(100), nullable=True),
    Column("error", Text, nullable=True),
    Index(None, "state", "not_before"),
    Index(None, "repository", "manifest_digest"),
)

# -- pull policies by scan result (migration 0010)

# Per namespace: refuse pulls of images with findings at or above `min_severity`, and
# (when `allow_unscanned` is false) of images with no scan result yet.
scan_policies = Table(
    "scan_policies",
    metadata,
    Column("namespace", String(255), primary_key=True),
    Column("min_severity", String(10), nullable=False),
    Column("allow_unscanned", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(255), nullable=True),
)

# Exceptions to a namespace's policy: advisory IDs (or aliases such as CVE IDs) that do not
# count, until `expires_at` (none: until removed).
scan_allowlist = Table(
    "scan_allowlist",
    metadata,
    Column("namespace", String(255), primary_key=True),
    Column("vulnerability", String(255), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("reason", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=True),
)

# -- event log, webhooks (migration 0011)

# The durable event log: one row per change (push, tag created/moved, delete, scan
# completed, quota exceeded, ...), written in the change's own transaction where there is
# one. Consumers (webhooks, later replication) read it in id order from their own cursor.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("type", String(40), nullable=False),
    Column("namespace", String(255), nullable=True),
    Column("repository", String(255), nullable=True),
    Column("digest", DIGEST, nullable=True),
    Column("tag", String(255), nullable=True),
    Column("media_type", String(255), nullable=True),
    Column("actor", String(255), nullable=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("data", Text, nullable=True),  # JSON: type-specific details
    Index(None, "namespace", "id"),
)

# How far each consumer of the event log has read.
event_cursors = Table(
    "event_cursors",
    metadata,
    Column("consumer", String(100), primary_key=True),
    Column("last_event_id", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# A namespace's webhook: where to POST which events. `secret` is encrypted at rest
# (cargohold.secretbox), since signing needs it in the clear.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("namespace", String(255), nullable=False),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("event_types", Text, nullable=False),  # JSON: ["push", "delete", ...]
    Column("enabled", Boolean, nullable=False),
    Column("description", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index(None, "namespace"),
)

# One event to one webhook: queued, claimed with a lease (state sending), retried with
# back-off, delivered or failed; `history` keeps every attempt's status code.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("webhook_id", Integer, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", Integer, nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("state", String(10), nullable=False),  # queued | sending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("worker", String(100), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("response_excerpt", Text, nullable=True),
    Column("history", Text, nullable=True),  # JSON: [{"at", "status_code", "error", ...}]
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("duration_ms", Integer, nullable=True),
    Index(None, "state", "next_attempt_at"),
    Index(None, "webhook_id", "id"),
)

# -- pull-through cache (migration 0012)

# A namespace ("*": the whole registry) that caches an upstream registry. `mirror_of` is the
# host name containerd sends as `?ns=` (e.g. docker.io); `remote_prefix` is put in front of
# the repository path upstream (hub/alpine -> library/alpine with prefix "library").
proxy_rules = Table(
    "proxy_rules",
    metadata,
    Column("namespace", String(255), primary_key=True),
    Column("upstream_url", String(1000), nullable=False),
    Column("mirror_of", String(255), nullable=True),
    Column("remote_prefix", String(255), nullable=True),
    Column("username", String(255), nullable=True),
    Column("password_encrypted", Text, nullable=True),
    Column("mode", String(20), nullable=False),  # local-first | upstream-first
    Column("tag_ttl_seconds", Integer, nullable=False),
    Column("serve_stale_on_error", Boolean, nullable=False),
    Column("serve_stale_on_404", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# When a cached tag was last checked against the upstream, and what it pointed to there.
proxy_tag_checks = Table(
    "proxy_tag_checks",
    metadata,
    Column("repository", String(255), primary_key=True),
    Column("tag", String(128), primary_key=True),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    Column("upstream_digest", DIGEST, nullable=True),
)

# Blobs a cached manifest references that have not been fetched from the upstream yet (a
# manifest_blobs row needs the blob row). Replaced by manifest_blobs rows, in the
# transaction that records the blob, when the blob's first pull verifies and stores it.
proxy_pending_blobs = Table(
    "proxy_pending_blobs",
    metadata,
    Column(
        "manifest_id", Integer, ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("digest", DIGEST, primary_key=True),
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("size", BigInteger, nullable=False),
    Index(None, "repository_id", "digest"),
)

# -- signatures and promotion (migration 0013)

# Public keys a namespace trusts for cosign signatures: for its signature pull policy and
# for promotions into it.
trusted_keys = Table(
    "trusted_keys",
    metadata,
    Column("namespace", String(255), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("public_key", Text, nullable=False),  # PEM
    Column("fingerprint", String(80), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=True),
)

# A namespace whose images must carry a cosign signature by one of its trusted keys to be
# pulled (signature manifests themselves and artifacts are exempt).
signature_policies = Table(
    "signature_policies",
    metadata,
    Column("namespace", String(255), primary_key=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(255), nullable=True),
)

# What an image must satisfy to be promoted into a namespace.
promotion_gates = Table(
    "promotion_gates",
    metadata,
    Column("namespace", String(255), primary_key=True),
    # refuse images with findings at or above this severity, or never scanned (null: no check)
    Column("max_severity", String(10), nullable=True),
    Column("require_signature", Boolean, nullable=False),  # by one of the trusted keys
    Column("require_immutable", Boolean, nullable=False),  # the target tag is protected
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(255), nullable=True),
)

# -- replication (migration 0014)

# A remote registry that replication rules push to or pull from. `secret_encrypted` (a
# password or token) is encrypted at rest with cargohold.secretbox; it is never returned.
replication_endpoints = Table(
    "replication_endpoints",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("url", Text, nullable=False),
    Column("username", String(255), nullable=True),
    Column("secret_encrypted", Text, nullable=True),
    Column("insecure", Boolean, nullable=False),  # skip TLS certificate verification
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# What to copy where: push (local -> endpoint) or pull (endpoint -> local), repositories
# matching `source` (a glob) and tags matching `tags` (a glob), renamed under `dest_prefix`.
replication_rules = Table(
    "replication_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("direction", String(4), nullable=False),  # push | pull
    Column("endpoint", String(64), ForeignKey("replication_endpoints.name"), nullable=False),
    Column("source", String(255), nullable=False),  # repository glob: team/*, team/app
    Column("tags", String(255), nullable=False),  # tag glob: *, v*
    Column("dest_prefix", String(255), nullable=True),
    Column("trigger", String(10), nullable=False),  # event | schedule | manual
    Column("interval_minutes", Integer, nullable=True),  # for schedule
    Column("replicate_deletes", Boolean, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("next_run_at", DateTime(timezone=True), nullable=True),  # schedule
    Column("last_run_at", DateTime(timezone=True), nullable=True),
    Column("last_status", String(10), nullable=True),
)

# One run of a rule: queued, claimed with a lease (running), retried with back-off
# (state retrying), then succeeded, partial (some images failed) or failed.
replication_executions = Table(
    "replication_executions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "rule_id",
        Integer,
        ForeignKey("replication_rules.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("trigger", String(10), nullable=False),  # event | schedule | manual
    Column("scope", Text, nullable=True),  # JSON for event runs: repository, tag, delete
    Column("state", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("worker", String(100), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("images", Integer, nullable=False),
    Column("manifests", Integer, nullable=False),
    Column("blobs_copied", Integer, nullable=False),
    Column("blobs_skipped", Integer, nullable=False),
    Column("blobs_mounted", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("deleted", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Index(None, "state", "next_attempt_at"),
    Index(None, "rule_id", "id"),
)

# The execution log: one row per image (or deletion) an attempt handled.
replication_tasks = Table(
    "replication_tasks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "execution_id",
        Integer,
        ForeignKey("replication_executions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("attempt", Integer, nullable=False),
    Column("action", String(10), nullable=False),  # copy | delete
    Column("source", String(512), nullable=False),  # repository:tag or repository@digest
    Column("destination", String(512), nullable=False),
    Column("digest", DIGEST, nullable=True),
    Column("state", String(10), nullable=False),  # succeeded | failed
    Column("manifests", Integer, nullable=False),
    Column("blobs_copied", Integer, nullable=False),
    Column("blobs_skipped", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("error", Text, nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Index(None, "execution_id", "id"),
)

# A signed-in web UI session (the cookie names it; only a hash of its id is stored, so
# the table cannot be replayed). Deleting a row ends the session on every replica.
ui_sessions = Table(
    "ui_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),  # sha256 hex of the session id
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),  # for the idle timeout
    Column("address", String(64), nullable=True),
    Column("user_agent", String(255), nullable=True),
    Index(None, "user_id"),
    Index(None, "last_seen_at"),
)

# Storage usage of each repository, sampled at most once a day (the last sample of a day
# wins), for the usage charts over time.
usage_samples = Table(
    "usage_samples",
    metadata,
    Column("repository", String(255), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("stored_bytes", BigInteger, nullable=False),
    Column("logical_bytes", BigInteger, nullable=False),
    Column("blobs", Integer, nullable=False),
    Column("manifests", Integer, nullable=False),
    Column("sampled_at", DateTime(timezone=True), nullable=False),
    Index(None, "day"),
)
