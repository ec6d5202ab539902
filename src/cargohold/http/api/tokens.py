"""/v1/users/{name}/tokens: personal access tokens (the user themselves, or registry admins)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from cargohold.auth.credentials import create_token
from cargohold.http.api.deps import (
    AUTH_RESPONSES,
    CONFLICT,
    INVALID,
    NOT_FOUND,
    Caller,
    Store,
    check_name,
    log_change,
    self_or_admin,
)
from cargohold.http.api.errors import not_found
from cargohold.http.api.schemas import Token, TokenCreate, TokenCreated

router = APIRouter(
    prefix="/v1/users/{name}/tokens",
    tags=["tokens"],
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)


@router.get("", response_model=list[Token], summary="A user's tokens, revoked and expired too")
def list_tokens(name: str, principal: Caller, store: Store) -> list[Token]:
    self_or_admin(principal, name)
    return [Token.model_validate(row) for row in store.list_tokens(name)]


@router.post(
    "",
    response_model=TokenCreated,
    status_code=201,
    summary="Create a token; it is in this response only and is stored hashed",
    responses={**INVALID, **CONFLICT},
)
def add_token(
    request: Request, name: str, body: TokenCreate, principal: Caller, store: Store
) -> TokenCreated:
    self_or_admin(principal, name)
    check_name(body.name, "token name")
    made = create_token(store, name, body.name, body.expires_in_days)
    log_change(request, principal, "token_add", name, token=body.name)
    return TokenCreated(
        name=body.name,
        expires_at=made.expires_at,
        revoked=False,
        created_at=made.created_at,
        token=made.secret,
    )


@router.delete(
    "/{token_name}",
    status_code=204,
    response_class=Response,
    summary="Revoke a token: it stops working at once",
)
def revoke_token(
    request: Request, name: str, token_name: str, principal: Caller, store: Store
) -> Response:
    self_or_admin(principal, name)
    if token_name not in {token["name"] for token in store.list_tokens(name)}:
        raise not_found(f"user {name!r} has no token named {token_name!r}")
    store.revoke_token(name, token_name)
    log_change(request, principal, "token_revoke", name, token=token_name)
    return Response(status_code=204)
