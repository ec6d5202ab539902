"""Access control: users, namespaces, teams, grants, robots, personal access tokens.

Revision ID: 0002_access_control
Revises: 0001_core
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_access_control"
down_revision = "0001_core"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], ondelete="CASCADE", name=f"fk_{table}_{column}_{target}"
    )


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "namespaces",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_namespaces"),
        sa.UniqueConstraint("name", name="uq_namespaces_name"),
    )
    op.create_table(
        "repository_visibility",
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("repository", name="pk_repository_visibility"),
    )
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("namespace_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_teams"),
        sa.UniqueConstraint("namespace_id", "name", name="uq_teams_namespace_id_name"),
        _fk("teams", "namespace_id", "namespaces"),
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("team_id", "user_id", name="pk_team_members"),
        _fk("team_members", "team_id", "teams"),
        _fk("team_members", "user_id", "users"),
    )
    op.create_table(
        "grants",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("namespace_id", sa.Integer, nullable=False),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("team_id", sa.Integer, nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_grants"),
        sa.UniqueConstraint(
            "namespace_id",
            "repository",
            "user_id",
            "team_id",
            name="uq_grants_namespace_id_repository_user_id_team_id",
        ),
        _fk("grants", "namespace_id", "namespaces"),
        _fk("grants", "user_id", "users"),
        _fk("grants", "team_id", "teams"),
    )
    op.create_table(
        "robots",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("namespace_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("actions", sa.String(64), nullable=False),
        sa.Column("repositories", sa.Text, nullable=False),
        sa.Column("expires_at", WHEN, nullable=True),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_robots"),
        sa.UniqueConstraint("namespace_id", "name", name="uq_robots_namespace_id_name"),
        _fk("robots", "namespace_id", "namespaces"),
    )
    op.create_table(
        "access_tokens",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("expires_at", WHEN, nullable=True),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_access_tokens"),
        sa.UniqueConstraint("user_id", "name", name="uq_access_tokens_user_id_name"),
        _fk("access_tokens", "user_id", "users"),
    )


def downgrade() -> None:
    for table in (
        "access_tokens",
        "robots",
        "grants",
        "team_members",
        "teams",
        "repository_visibility",
        "namespaces",
        "users",
    ):
        op.drop_table(table)
