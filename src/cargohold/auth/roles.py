"""Roles and the repository actions each one allows."""

from __future__ import annotations

from enum import StrEnum

PULL, PUSH, DELETE = "pull", "push", "delete"
ALL_ACTIONS = frozenset({PULL, PUSH, DELETE})


class Role(StrEnum):
    READER = "reader"
    WRITER = "writer"
    MAINTAINER = "maintainer"
    ADMIN = "admin"  # also manages members and robots


ROLE_ACTIONS: dict[Role, frozenset[str]] = {
    Role.READER: frozenset({PULL}),
    Role.WRITER: frozenset({PULL, PUSH}),
    Role.MAINTAINER: ALL_ACTIONS,
    Role.ADMIN: ALL_ACTIONS,
}


def parse_actions(text: str) -> frozenset[str]:
    """'pull,push' -> {'pull', 'push'}; raises ValueError naming an unknown action."""
    actions = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = actions - ALL_ACTIONS
    if unknown:
        raise ValueError(f"unknown action(s) {', '.join(sorted(unknown))}: use pull, push, delete")
    return actions
