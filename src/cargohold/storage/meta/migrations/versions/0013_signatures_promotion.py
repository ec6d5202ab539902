"""Trusted public keys, signature pull policies and promotion gates.

Revision ID: 0013_signatures_promotion
Revises: 0012_proxy_cache
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_signatures_promotion"
down_revision = "0012_proxy_cache"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trusted_keys",
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("namespace", "name", name="pk_trusted_keys"),
    )
    op.create_table(
        "signature_policies",
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("namespace", name="pk_signature_policies"),
    )
    op.create_table(
        "promotion_gates",
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("max_severity", sa.String(10), nullable=True),
        sa.Column("require_signature", sa.Boolean, nullable=False),
        sa.Column("require_immutable", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("namespace", name="pk_promotion_gates"),
    )


def downgrade() -> None:
    op.drop_table("promotion_gates")
    op.drop_table("signature_policies")
    op.drop_table("trusted_keys")
