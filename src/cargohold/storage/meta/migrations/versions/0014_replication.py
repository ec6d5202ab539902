"""Replication: endpoints, rules, executions and their per-image log.

Revision ID: 0014_replication
Revises: 0013_signatures_promotion
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_replication"
down_revision = "0013_signatures_promotion"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "replication_endpoints",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("username", sa.String(255), nullable=True),
        sa.Column("secret_encrypted", sa.Text, nullable=True),
        sa.Column("insecure", sa.Boolean, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_replication_endpoints"),
    )
    op.create_table(
        "replication_rules",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(4), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("tags", sa.String(255), nullable=False),
        sa.Column("dest_prefix", sa.String(255), nullable=True),
        sa.Column("trigger", sa.String(10), nullable=False),
        sa.Column("interval_minutes", sa.Integer, nullable=True),
        sa.Column("replicate_deletes", sa.Boolean, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("next_run_at", WHEN, nullable=True),
        sa.Column("last_run_at", WHEN, nullable=True),
        sa.Column("last_status", sa.String(10), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_replication_rules"),
        sa.UniqueConstraint("name", name="uq_replication_rules_name"),
        sa.ForeignKeyConstraint(
            ["endpoint"],
            ["replication_endpoints.name"],
            name="fk_replication_rules_endpoint_replication_endpoints",
        ),
    )
    op.create_table(
        "replication_executions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("rule_id", sa.Integer, nullable=False),
        sa.Column("trigger", sa.String(10), nullable=False),
        sa.Column("scope", sa.Text, nullable=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", WHEN, nullable=False),
        sa.Column("lease_until", WHEN, nullable=True),
        sa.Column("worker", sa.String(100), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("started_at", WHEN, nullable=True),
        sa.Column("finished_at", WHEN, nullable=True),
        sa.Column("images", sa.Integer, nullable=False),
        sa.Column("manifests", sa.Integer, nullable=False),
        sa.Column("blobs_copied", sa.Integer, nullable=False),
        sa.Column("blobs_skipped", sa.Integer, nullable=False),
        sa.Column("blobs_mounted", sa.Integer, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("deleted", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_replication_executions"),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["replication_rules.id"],
            ondelete="CASCADE",
            name="fk_replication_executions_rule_id_replication_rules",
        ),
    )
    op.create_index(
        "ix_replication_executions_state_next_attempt_at",
        "replication_executions",
        ["state", "next_attempt_at"],
    )
    op.create_index(
        "ix_replication_executions_rule_id_id", "replication_executions", ["rule_id", "id"]
    )
    op.create_table(
        "replication_tasks",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("execution_id", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("destination", sa.String(512), nullable=False),
        sa.Column("digest", sa.String(200), nullable=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("manifests", sa.Integer, nullable=False),
        sa.Column("blobs_copied", sa.Integer, nullable=False),
        sa.Column("blobs_skipped", sa.Integer, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("finished_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_replication_tasks"),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["replication_executions.id"],
            ondelete="CASCADE",
            name="fk_replication_tasks_execution_id_replication_executions",
        ),
    )
    op.create_index(
        "ix_replication_tasks_execution_id_id", "replication_tasks", ["execution_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_replication_tasks_execution_id_id", table_name="replication_tasks")
    op.drop_table("replication_tasks")
    op.drop_index("ix_replication_executions_rule_id_id", table_name="replication_executions")
    op.drop_index(
        "ix_replication_executions_state_next_attempt_at", table_name="replication_executions"
    )
    op.drop_table("replication_executions")
    op.drop_table("replication_rules")
    op.drop_table("replication_endpoints")
