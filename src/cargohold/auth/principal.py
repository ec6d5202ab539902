"""Who is making a request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["anonymous", "user", "robot"]
    name: str
    user_id: int | None = None
    is_admin: bool = False
    # Robots act only inside one namespace, with fixed actions, maybe on listed repositories.
    robot_namespace: str | None = None
    robot_actions: frozenset[str] = field(default_factory=frozenset)
    robot_repositories: frozenset[str] = field(default_factory=frozenset)

    @property
    def authenticated(self) -> bool:
        return self.kind != "anonymous"


ANONYMOUS = Principal("anonymous", "")
ROBOT_PREFIX = "robot$"


def robot_username(namespace: str, name: str) -> str:
    return f"{ROBOT_PREFIX}{namespace}+{name}"


def parse_robot_username(username: str) -> tuple[str, str] | None:
    if not username.startswith(ROBOT_PREFIX):
        return None
    namespace, plus, name = username[len(ROBOT_PREFIX) :].partition("+")
    if not plus or not namespace or not name:
        return None
    return namespace, name
