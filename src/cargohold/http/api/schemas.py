"""Request and response bodies. Responses never carry password or secret hashes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from cargohold.auth.roles import Role

NAME_RULE = "lowercase letters and digits, separated by '.', '_', '__' or '-'"
Action = Literal["pull", "push", "delete"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorItem(BaseModel):
    code: str = Field(examples=["DENIED"])
    message: str
    detail: object | None = None


class ErrorBody(BaseModel):
    errors: list[ErrorItem]


# -- users
class Me(BaseModel):
    name: str = Field(description="user name, or robot$<namespace>+<robot> for a robot")
    kind: Literal["user", "robot"]
    admin: bool = Field(description="a registry-wide admin")


class User(BaseModel):
    name: str
    admin: bool
    disabled: bool


class UserCreate(Body):
    name: str = Field(max_length=64, description=f"one path component: {NAME_RULE}")
    password: str = Field(min_length=8, max_length=1024)
    admin: bool = False


class UserUpdate(Body):
    admin: bool | None = None
    disabled: bool | None = Field(None, description="a disabled user cannot log in")
    password: str | None = Field(None, min_length=8, max_length=1024)


# -- namespaces and visibility
class Namespace(BaseModel):
    name: str
    kind: Literal["user", "org"]
    public: bool = Field(description="anyone may pull its repositories")


class OrgCreate(Body):
    name: str = Field(max_length=64, description=f"one path component: {NAME_RULE}")
    public: bool = False


class NamespaceVisibility(Body):
    public: bool


class RepositoryVisibilityUpdate(Body):
    public: bool | None = Field(description="true, false, or null to inherit the namespace's")


class RepositoryVisibility(BaseModel):
    repository: str
    public: bool | None = Field(description="the repository's own setting; null: inherited")
    effective: bool = Field(description="whether the repository is public now")


# -- members and teams
class Grant(BaseModel):
    user: str | None = None
    team: str | None = None
    role: Role
    repository: str | None = Field(None, description="null: the whole namespace")


class GrantCreate(Body):
    user: str | None = Field(None, max_length=64)
    team: str | None = Field(None, max_length=64)
    role: Role
    repository: str | None = Field(
        None, max_length=255, description="only this repository (<namespace>/<name>)"
    )

    @model_validator(mode="after")
    def _one_grantee(self) -> GrantCreate:
        if (self.user is None) == (self.team is None):
            raise ValueError("give exactly one of user or team")
        return self


class Team(BaseModel):
    name: str
    members: list[str]


class TeamCreate(Body):
    name: str = Field(max_length=64, description=f"one path component: {NAME_RULE}")


class TeamMemberAdd(Body):
    user: str = Field(max_length=64)


# -- robots
class Robot(BaseModel):
    username: str = Field(description="log in with this name: robot$<namespace>+<name>")
    namespace: str
    name: str
    actions: list[Action]
    repositories: list[str] = Field(description="empty: every repository of the namespace")
    expires_at: datetime | None
    revoked: bool
    created_at: datetime | None


class RobotCreate(Body):
    name: str = Field(max_length=64, description=f"one path component: {NAME_RULE}")
    actions: list[Action] = Field(min_length=1)
    repositories: list[str] = Field(default_factory=list, max_length=100)
    expires_in_days: int | None = Field(None, ge=1, le=36500)


class RobotCreated(Robot):
    secret: str = Field(description="the robot's password; shown only in this response")


# -- personal access tokens
class Token(BaseModel):
    name: str
    expires_at: datetime | None
    revoked: bool
    created_at: datetime | None


class TokenCreate(Body):
    name: str = Field(max_length=64, description=f"one path component: {NAME_RULE}")
    expires_in_days: int | None = Field(None, ge=1, le=36500)


class TokenCreated(Token):
    token: str = Field(description="use as the password with the user's name; shown only now")


# -- audit log
class AuditEntry(BaseModel):
    at: datetime
    actor: str = Field(description="user, robot$<ns>+<name>, cli:<os user> or anonymous")
    address: str | None = Field(description="the client's address, when over HTTP")
    action: str = Field(examples=["push", "pull", "delete", "login_failed", "grant"])
    target: str = Field(description="repository, namespace, user or path acted on")
    outcome: str = Field(examples=["ok", "failed"])
    detail: dict[str, object] | None


# -- tags as versions
DIGEST_EXAMPLE = "sha256:0d1e0c5cba5d6e3b0f6b4ba57c9e7a8c04a8d3a5d0ad1f5f4e3b9e0d6f0e2a11"


class ScanSummary(BaseModel):
    status: str = Field(description="scanned, or not-an-image (an artifact: nothing to scan)")
    scanned_at: datetime
    severity_counts: dict[str, int] = Field(
        description="findings by severity: critical, high, medium, low, unknown"
    )
    vulndb_import_id: int | None = Field(
        description="the advisory import matched against (null: none was imported)"
    )


class Tag(BaseModel):
    name: str
    digest: str = Field(description="the manifest the tag names now", examples=[DIGEST_EXAMPLE])
    media_type: str
    size: int = Field(description="the manifest's size in bytes")
    updated_at: datetime = Field(description="when the tag last changed")
    scan: ScanSummary | None = Field(
        default=None,
        description="the newest vulnerability scan of the manifest, in brief (tag listings "
        "only; null: not scanned yet). The whole report: GET .../scans/{tag}",
    )


class TagList(BaseModel):
    tags: list[Tag]
    next: str | None = Field(description="pass as ?last= for the next page; null: no more")


class TagEvent(BaseModel):
    id: int = Field(description="the history entry: `to` of a rollback may name it")
    repository: str
    tag: str
    action: Literal["created", "moved", "deleted"]
    old_digest: str | None = Field(description="what the tag named before; null: created")
    new_digest: str | None = Field(description="what it names after; null: deleted")
    via: str = Field(examples=["push", "delete", "rollback", "retag", "retention"])
    actor: str | None = Field(description="who made the change, when known")
    at: datetime


class TagHistory(BaseModel):
    events: list[TagEvent] = Field(description="newest first")
    next_before: int | None = Field(
        description="pass as ?before= for the next (older) page; null: no more"
    )


class Rollback(Body):
    to: str | StrictInt | None = Field(
        None,
        description=(
            "a manifest digest, a history entry id, or an ISO 8601 time (where the tag "
            "pointed then; UTC if no zone); null or omitted: the manifest the tag named "
            "before its latest change"
        ),
        examples=["2026-11-30T09:15:00Z", 42, DIGEST_EXAMPLE],
    )


class Retag(Body):
    source: str = Field(
        min_length=1,
        max_length=600,
        description=(
            "the manifest to point the tag at: <digest> or <tag> (of this repository), "
            "<repository>@<digest> or <repository>:<tag> (of another repository of the "
            "same namespace; its content is linked, not copied)"
        ),
        examples=["team/app:prod", f"team/app@{DIGEST_EXAMPLE}", DIGEST_EXAMPLE],
    )


class TagChange(BaseModel):
    repository: str
    tag: str
    digest: str = Field(description="what the tag names now")
    changed: bool = Field(description="false: the tag named that manifest already")
    event: TagEvent | None = Field(description="the history entry recorded, if it changed")


# -- immutable-tag rules
class ImmutableRule(BaseModel):
    id: int
    namespace: str
    repository: str | None = Field(description="null: every repository of the namespace")
    pattern: str = Field(description="a glob over tag names (* ? [...])", examples=["v*"])
    created_by: str | None
    created_at: datetime


class ImmutableRuleList(BaseModel):
    rules: list[ImmutableRule]


class ImmutableRuleCreate(Body):
    pattern: str = Field(
        min_length=1,
        max_length=1000,
        description="tag characters and the wildcards * ? [...], at most 128 characters",
        examples=["v*", "release-*", "latest"],
    )
    repository: str | None = Field(
        None,
        max_length=255,
        description="only this repository of the namespace; null: all of them",
    )
