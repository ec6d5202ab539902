"""Vulnerability scan results: one row per scan of a manifest.

Revision ID: 0008_scan_results
Revises: 0007_advisories
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_scan_results"
down_revision = "0007_advisories"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scan_results",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("manifest_digest", sa.String(200), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("vulndb_import_id", sa.Integer, nullable=True),
        sa.Column("vulndb_imported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("report", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scan_results"),
    )
    op.create_index(
        "ix_scan_results_repository_manifest_digest_scanned_at",
        "scan_results",
        ["repository", "manifest_digest", "scanned_at"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_scan_results_repository_manifest_digest_scanned_at", table_name="scan_results"
    )
    op.drop_table("scan_results")
