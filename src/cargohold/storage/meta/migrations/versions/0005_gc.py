"""Garbage collection: find a blob's links without scanning every repository; the log
of collection runs.

Revision ID: 0005_gc
Revises: 0004_versioning
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_gc"
down_revision = "0004_versioning"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_repository_blobs_digest", "repository_blobs", ["digest"])
    op.create_table(
        "gc_runs",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("report", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gc_runs"),
    )
    op.create_index("ix_gc_runs_started_at", "gc_runs", ["started_at"])


def downgrade() -> None:
    op.drop_table("gc_runs")
    op.drop_index("ix_repository_blobs_digest", "repository_blobs")
