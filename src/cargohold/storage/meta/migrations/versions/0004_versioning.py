"""Tag history and immutable-tag rules.

Revision ID: 0004_versioning
Revises: 0003_audit
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_versioning"
down_revision = "0003_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tag_events",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("repository_id", sa.Integer, nullable=False),
        sa.Column("tag", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("old_digest", sa.String(200), nullable=True),
        sa.Column("new_digest", sa.String(200), nullable=True),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name="fk_tag_events_repository_id_repositories",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tag_events"),
    )
    op.create_index(
        "ix_tag_events_repository_id_tag_id", "tag_events", ["repository_id", "tag", "id"]
    )
    op.create_index("ix_tag_events_at", "tag_events", ["at"])
    op.create_table(
        "immutable_tag_rules",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("pattern", sa.String(128), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_immutable_tag_rules"),
        sa.UniqueConstraint(
            "namespace",
            "repository",
            "pattern",
            name="uq_immutable_tag_rules_namespace_repository_pattern",
        ),
    )


def downgrade() -> None:
    op.drop_table("immutable_tag_rules")
    op.drop_table("tag_events")
