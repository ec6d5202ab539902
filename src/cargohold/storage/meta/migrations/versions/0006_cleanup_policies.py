"""Retention policies and namespace quotas.

Revision ID: 0006_cleanup_policies
Revises: 0005_gc
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_cleanup_policies"
down_revision = "0005_gc"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_policies",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("tag_pattern", sa.String(128), nullable=False),
        sa.Column("keep_last", sa.Integer, nullable=True),
        sa.Column("keep_days", sa.Integer, nullable=True),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_retention_policies"),
        sa.UniqueConstraint(
            "namespace",
            "repository",
            "tag_pattern",
            name="uq_retention_policies_namespace_repository_tag_pattern",
        ),
    )
    op.create_table(
        "namespace_quotas",
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("limit_bytes", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("namespace", name="pk_namespace_quotas"),
    )


def downgrade() -> None:
    op.drop_table("namespace_quotas")
    op.drop_table("retention_policies")
