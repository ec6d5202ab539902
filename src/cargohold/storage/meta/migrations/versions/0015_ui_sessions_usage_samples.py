"""Web UI: server-side sessions, and daily storage usage samples per repository.

Revision ID: 0015_ui_sessions_usage_samples
Revises: 0014_replication
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_ui_sessions_usage_samples"
down_revision = "0014_replication"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("last_seen_at", WHEN, nullable=False),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id_hash", name="pk_ui_sessions"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            ondelete="CASCADE",
            name="fk_ui_sessions_user_id_users",
        ),
    )
    op.create_index("ix_ui_sessions_user_id", "ui_sessions", ["user_id"])
    op.create_index("ix_ui_sessions_last_seen_at", "ui_sessions", ["last_seen_at"])
    op.create_table(
        "usage_samples",
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("stored_bytes", sa.BigInteger, nullable=False),
        sa.Column("logical_bytes", sa.BigInteger, nullable=False),
        sa.Column("blobs", sa.Integer, nullable=False),
        sa.Column("manifests", sa.Integer, nullable=False),
        sa.Column("sampled_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("repository", "day", name="pk_usage_samples"),
    )
    op.create_index("ix_usage_samples_day", "usage_samples", ["day"])


def downgrade() -> None:
    op.drop_index("ix_usage_samples_day", table_name="usage_samples")
    op.drop_table("usage_samples")
    op.drop_index("ix_ui_sessions_last_seen_at", table_name="ui_sessions")
    op.drop_index("ix_ui_sessions_user_id", table_name="ui_sessions")
    op.drop_table("ui_sessions")
