"""Pull policies by vulnerability scan result, and their allow-lists.

Revision ID: 0010_scan_policies
Revises: 0009_scan_jobs
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_scan_policies"
down_revision = "0009_scan_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scan_policies",
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("min_severity", sa.String(10), nullable=False),
        sa.Column("allow_unscanned", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("namespace", name="pk_scan_policies"),
    )
    op.create_table(
        "scan_allowlist",
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("vulnerability", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("namespace", "vulnerability", name="pk_scan_allowlist"),
    )


def downgrade() -> None:
    op.drop_table("scan_allowlist")
    op.drop_table("scan_policies")
