"""/v1/namespaces/{ns}/immutable-tag-rules: tags that never move or go once pushed.

A rule protects the tags matching a glob, in one repository or in the whole namespace:
pushes that would move such a tag, its deletion and rollbacks are refused (403 DENIED,
naming the rule). Nobody can bypass a rule; a namespace admin removes it instead.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from cargohold.http.api.deps import (
    AUTH_RESPONSES,
    CONFLICT,
    MAX_ID,
    AnyCaller,
    Caller,
    RegistryDep,
    Store,
    check_repository,
    error_doc,
    log_change,
    namespace_admin,
    visible_namespace,
)
from cargohold.http.api.errors import not_found
from cargohold.http.api.schemas import ImmutableRule, ImmutableRuleCreate, ImmutableRuleList
from cargohold.storage.meta import ImmutableRule as RuleRecord

router = APIRouter(
    prefix="/v1/namespaces/{ns}/immutable-tag-rules",
    tags=["immutable tags"],
    responses={
        **AUTH_RESPONSES,
        400: error_doc(
            "an invalid namespace, repository, pattern or request body (NAME_INVALID, "
            "TAG_INVALID, INVALID_REQUEST)"
        ),
        404: error_doc("no such namespace (NAME_UNKNOWN), or no such rule"),
    },
)


def rule_out(rule: RuleRecord) -> ImmutableRule:
    return ImmutableRule(
        id=rule.id,
        namespace=rule.namespace,
        repository=rule.repository or None,
        pattern=rule.pattern,
        created_by=rule.created_by,
        created_at=rule.created_at,
    )


@router.get(
    "",
    response_model=ImmutableRuleList,
    summary="Immutable-tag rules of a namespace (anyone who can see it)",
)
def list_rules(
    ns: str, principal: AnyCaller, store: Store, registry: RegistryDep
) -> ImmutableRuleList:
    visible_namespace(store, principal, ns)
    return ImmutableRuleList(rules=[rule_out(rule) for rule in registry.tags.rules(ns)])


@router.post(
    "",
    response_model=ImmutableRule,
    status_code=201,
    summary="Protect matching tags in the namespace or one repository (namespace admins)",
    responses=CONFLICT,
)
def add_rule(
    request: Request,
    ns: str,
    body: ImmutableRuleCreate,
    principal: Caller,
    store: Store,
    registry: RegistryDep,
) -> ImmutableRule:
    namespace_admin(store, principal, ns)
    if body.repository is not None:
        check_repository(body.repository, ns)
    rule = registry.tags.add_rule(ns, body.pattern, body.repository, principal.name)
    log_change(
        request,
        principal,
        "immutable_rule_add",
        rule.repository or ns,
        rule=rule.id,
        pattern=rule.pattern,
    )
    return rule_out(rule)


@router.delete(
    "/{rule_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a rule: the only way to move or delete the tags it protects",
)
def remove_rule(
    request: Request,
    ns: str,
    rule_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    principal: Caller,
    store: Store,
    registry: RegistryDep,
) -> Response:
    namespace_admin(store, principal, ns)
    rule = next((found for found in registry.tags.rules(ns) if found.id == rule_id), None)
    if rule is None or not registry.tags.remove_rule(ns, rule_id):
        raise not_found(f"namespace {ns} has no immutable-tag rule {rule_id}")
    log_change(
        request,
        principal,
        "immutable_rule_remove",
        rule.repository or ns,
        rule=rule_id,
        pattern=rule.pattern,
    )
    return Response(status_code=204)
