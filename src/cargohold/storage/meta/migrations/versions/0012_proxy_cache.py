"""Pull-through cache: proxy rules, tag revalidation times, blobs awaiting their first fetch.

Revision ID: 0012_proxy_cache
Revises: 0011_events_webhooks
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_proxy_cache"
down_revision = "0011_events_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proxy_rules",
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("upstream_url", sa.String(1000), nullable=False),
        sa.Column("mirror_of", sa.String(255), nullable=True),
        sa.Column("remote_prefix", sa.String(255), nullable=True),
        sa.Column("username", sa.String(255), nullable=True),
        sa.Column("password_encrypted", sa.Text, nullable=True),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("tag_ttl_seconds", sa.Integer, nullable=False),
        sa.Column("serve_stale_on_error", sa.Boolean, nullable=False),
        sa.Column("serve_stale_on_404", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("namespace", name="pk_proxy_rules"),
    )
    op.create_table(
        "proxy_tag_checks",
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("tag", sa.String(128), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("upstream_digest", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("repository", "tag", name="pk_proxy_tag_checks"),
    )
    op.create_table(
        "proxy_pending_blobs",
        sa.Column("manifest_id", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(200), nullable=False),
        sa.Column("repository_id", sa.Integer, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["manifest_id"],
            ["manifests.id"],
            name="fk_proxy_pending_blobs_manifest_id_manifests",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name="fk_proxy_pending_blobs_repository_id_repositories",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("manifest_id", "digest", name="pk_proxy_pending_blobs"),
    )
    op.create_index(
        "ix_proxy_pending_blobs_repository_id_digest",
        "proxy_pending_blobs",
        ["repository_id", "digest"],
    )


def downgrade() -> None:
    op.drop_index("ix_proxy_pending_blobs_repository_id_digest", table_name="proxy_pending_blobs")
    op.drop_table("proxy_pending_blobs")
    op.drop_table("proxy_tag_checks")
    op.drop_table("proxy_rules")
