"""The scan queue: jobs for the background vulnerability scanner; scan summaries.

Revision ID: 0009_scan_jobs
Revises: 0008_scan_results
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_scan_jobs"
down_revision = "0008_scan_results"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scan_jobs",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("repository", sa.String(255), nullable=True),
        sa.Column("manifest_digest", sa.String(200), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(100), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_scan_jobs"),
    )
    op.create_index("ix_scan_jobs_state_not_before", "scan_jobs", ["state", "not_before"])
    op.create_index(
        "ix_scan_jobs_repository_manifest_digest", "scan_jobs", ["repository", "manifest_digest"]
    )

    op.add_column("scan_results", sa.Column("status", sa.String(20), nullable=True))
    op.add_column("scan_results", sa.Column("severity_counts", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("scan_results", "severity_counts")
    op.drop_column("scan_results", "status")
    op.drop_index("ix_scan_jobs_repository_manifest_digest", table_name="scan_jobs")
    op.drop_index("ix_scan_jobs_state_not_before", table_name="scan_jobs")
    op.drop_table("scan_jobs")
