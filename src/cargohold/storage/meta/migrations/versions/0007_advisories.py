"""Vulnerability advisories (OSV records) and the imports that brought them.

Revision ID: 0007_advisories
Revises: 0006_cleanup_policies
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_advisories"
down_revision = "0006_cleanup_policies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "advisories",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn", sa.DateTime(timezone=True), nullable=True),
        sa.Column("summary", sa.Text, nullable=True),
        sa.Column("details", sa.Text, nullable=True),
        sa.Column("aliases", sa.Text, nullable=False),
        sa.Column("upstream", sa.Text, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("cvss_vector", sa.String(255), nullable=True),
        sa.Column("cvss_score_x10", sa.Integer, nullable=True),
        sa.Column("link", sa.Text, nullable=True),
        sa.Column("refs", sa.Text, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_advisories"),
    )
    op.create_table(
        "advisory_affected",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("advisory_id", sa.String(255), nullable=False),
        sa.Column("ecosystem", sa.String(100), nullable=False),
        sa.Column("package", sa.String(512), nullable=False),
        sa.Column("ranges", sa.Text, nullable=False),
        sa.Column("versions", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_advisory_affected"),
        sa.ForeignKeyConstraint(
            ["advisory_id"],
            ["advisories.id"],
            name="fk_advisory_affected_advisory_id_advisories",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_advisory_affected_ecosystem_package", "advisory_affected", ["ecosystem", "package"]
    )
    op.create_index("ix_advisory_affected_advisory_id", "advisory_affected", ["advisory_id"])
    op.create_table(
        "vulndb_imports",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("counts", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_vulndb_imports"),
    )
    op.create_index("ix_vulndb_imports_imported_at", "vulndb_imports", ["imported_at"])


def downgrade() -> None:
    op.drop_index("ix_vulndb_imports_imported_at", table_name="vulndb_imports")
    op.drop_table("vulndb_imports")
    op.drop_index("ix_advisory_affected_advisory_id", table_name="advisory_affected")
    op.drop_index("ix_advisory_affected_ecosystem_package", table_name="advisory_affected")
    op.drop_table("advisory_affected")
    op.drop_table("advisories")
