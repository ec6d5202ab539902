"""Trusted keys, the signature pull policy, promotion gates, and promotions.

- `/v1/namespaces/{ns}/keys`: public keys (PEM, as cosign.pub) the namespace trusts for
  cosign signatures.
- `/v1/namespaces/{ns}/signature-policy`: when present, the namespace's images are served
  only when signed by one of those keys (403 DENIED naming what is missing otherwise);
  signatures, SBOMs and other artifacts, and the platforms of a signed index, pass.
- `/v1/namespaces/{ns}/promotion-gates`: what an image must satisfy to be promoted into
  the namespace: scanned with nothing at or above a severity, signed by a trusted key,
  the target tag protected by an immutable-tag rule.
- `POST /v1/promotions`: promote `source` (REPOSITORY:TAG or @DIGEST) to `target`
  (REPOSITORY or REPOSITORY:TAG): everything linked, no blob copied, tag history via
  "promote". Needs pull on the source and push on the target; a failed gate is 403
  DENIED with every gate's verdict in the error's detail.

Anyone who can see a namespace reads its keys, policy and gates; namespace admins change
them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from cargohold.auth.roles import PULL, PUSH
from cargohold.http.api.deps import (
    AUTH_RESPONSES,
    CONFLICT,
    AnyCaller,
    Caller,
    RegistryDep,
    Store,
    error_doc,
    log_change,
    namespace_admin,
    require_access,
    visible_namespace,
)
from cargohold.http.api.errors import ApiError, not_found
from cargohold.http.api.schemas import Body
from cargohold.promotion import PromotionRefused, PromotionService
from cargohold.reference import parse_ref
from cargohold.signatures.cosign import KeyInvalid
from cargohold.signatures.store import Gates, KeyRecord, SignatureStore

router = APIRouter(
    tags=["signatures and promotion"],
    responses={**AUTH_RESPONSES, 404: error_doc("no such namespace, key or image")},
)

KeyName = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="a key")
]


class TrustedKey(BaseModel):
    name: str
    fingerprint: str = Field(description="sha256 of the key's DER SubjectPublicKeyInfo")
    public_key: str = Field(description="PEM")
    created_at: datetime
    created_by: str | None


class TrustedKeyList(BaseModel):
    keys: list[TrustedKey]


class TrustedKeyCreate(Body):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    public_key: str = Field(
        min_length=1, max_length=20_000, description="a PEM public key (ECDSA, RSA, Ed25519)"
    )


class SignaturePolicy(BaseModel):
    namespace: str
    required: bool = Field(description="pulls need a signature by a trusted key")


class PromotionGates(Body):
    max_severity: Literal["critical", "high", "medium", "low"] | None = Field(
        None,
        description="refuse images with findings at or above this severity, and images not "
        "scanned yet (null: no scan check)",
    )
    require_signature: bool = Field(False, description="a cosign signature by a trusted key")
    require_immutable: bool = Field(
        False, description="an immutable-tag rule protects the target tag"
    )


class PromotionGatesOut(PromotionGates):
    namespace: str
    updated_at: datetime
    updated_by: str | None


class PromotionRequest(Body):
    source: str = Field(max_length=400, examples=["team/app:1.4"])
    target: str = Field(
        max_length=400,
        description="REPOSITORY (the source's tag is kept) or REPOSITORY:TAG",
        examples=["prod/app"],
    )


class GateVerdict(BaseModel):
    gate: str
    passed: bool
    message: str


class PromotionOut(BaseModel):
    source: str
    target: str
    tag: str
    digest: str
    manifests_linked: int = Field(description="manifests the target did not have before")
    changed: bool = Field(description="false: the target tag named this image already")
    gates: list[GateVerdict]


def _key_out(record: KeyRecord) -> TrustedKey:
    return TrustedKey(
        name=record.name,
        fingerprint=record.fingerprint,
        public_key=record.public_key,
        created_at=record.created_at,
        created_by=record.created_by,
    )


def _gates_out(gates: Gates) -> PromotionGatesOut:
    return PromotionGatesOut(
        namespace=gates.namespace,
        max_severity=gates.max_severity,  # type: ignore[arg-type]
        require_signature=gates.require_signature,
        require_immutable=gates.require_immutable,
        updated_at=gates.updated_at,
        updated_by=gates.updated_by,
    )


# -- keys
@router.get("/v1/namespaces/{ns}/keys", response_model=TrustedKeyList, summary="Trusted keys")
def list_keys(ns: str, principal: AnyCaller, store: Store) -> TrustedKeyList:
    visible_namespace(store, principal, ns)
    return TrustedKeyList(keys=[_key_out(k) for k in SignatureStore(store.engine).keys(ns)])


@router.post(
    "/v1/namespaces/{ns}/keys",
    response_model=TrustedKey,
    status_code=201,
    summary="Trust a public key (namespace admins)",
    responses={**CONFLICT, 400: error_doc("not a usable public key (INVALID_REQUEST)")},
)
def add_key(
    request: Request, ns: str, body: TrustedKeyCreate, principal: Caller, store: Store
) -> TrustedKey:
    namespace_admin(store, principal, ns)
    try:
        record = SignatureStore(store.engine).add_key(
            ns, body.name, body.public_key, principal.name
        )
    except KeyInvalid as exc:
        raise ApiError(400, "INVALID_REQUEST", str(exc)) from None
    log_change(request, principal, "key_add", ns, key=body.name, fingerprint=record.fingerprint)
    return _key_out(record)


@router.delete(
    "/v1/namespaces/{ns}/keys/{name}",
    status_code=204,
    response_class=Response,
    summary="Stop trusting a key (namespace admins)",
)
def remove_key(
    request: Request, ns: str, name: KeyName, principal: Caller, store: Store
) -> Response:
    namespace_admin(store, principal, ns)
    if not SignatureStore(store.engine).remove_key(ns, name):
        raise not_found(f"namespace {ns} has no key named {name!r}")
    log_change(request, principal, "key_remove", ns, key=name)
    return Response(status_code=204)


# -- signature pull policy
@router.get(
    "/v1/namespaces/{ns}/signature-policy",
    response_model=SignaturePolicy,
    summary="Whether pulls need a signature by a trusted key",
)
def get_signature_policy(ns: str, principal: AnyCaller, store: Store) -> SignaturePolicy:
    visible_namespace(store, principal, ns)
    required = SignatureStore(store.engine).signatures_required(ns)
    return SignaturePolicy(namespace=ns, required=required)


@router.put(
    "/v1/namespaces/{ns}/signature-policy",
    response_model=SignaturePolicy,
    summary="Require signatures on pull (namespace admins; needs a trusted key first)",
    responses={409: error_doc("the namespace trusts no keys yet (CONFLICT)")},
)
def require_signatures(
    request: Request, ns: str, principal: Caller, store: Store
) -> SignaturePolicy:
    namespace_admin(store, principal, ns)
    signatures = SignatureStore(store.engine)
    if not signatures.keys(ns):
        raise ApiError(
            409,
            "CONFLICT",
            f"namespace {ns} trusts no keys yet: every pull would be refused; add a key first",
        )
    signatures.require_signatures(ns, True, principal.name)
    log_change(request, principal, "signature_policy", ns, required=True)
    return SignaturePolicy(namespace=ns, required=True)


@router.delete(
    "/v1/namespaces/{ns}/signature-policy",
    status_code=204,
    response_class=Response,
    summary="Stop requiring signatures on pull (namespace admins)",
)
def drop_signature_policy(request: Request, ns: str, principal: Caller, store: Store) -> Response:
    namespace_admin(store, principal, ns)
    SignatureStore(store.engine).require_signatures(ns, False, principal.name)
    log_change(request, principal, "signature_policy", ns, required=False)
    return Response(status_code=204)


# -- promotion gates
@router.get(
    "/v1/namespaces/{ns}/promotion-gates",
    response_model=PromotionGatesOut,
    summary="What an image must satisfy to be promoted into the namespace",
)
def get_gates(ns: str, principal: AnyCaller, store: Store) -> PromotionGatesOut:
    visible_namespace(store, principal, ns)
    gates = SignatureStore(store.engine).gates(ns)
    if gates is None:
        raise not_found(f"namespace {ns} has no promotion gates: every promotion passes")
    return _gates_out(gates)


@router.put(
    "/v1/namespaces/{ns}/promotion-gates",
    response_model=PromotionGatesOut,
    summary="Set the namespace's promotion gates (namespace admins)",
)
def set_gates(
    request: Request, ns: str, body: PromotionGates, principal: Caller, store: Store
) -> PromotionGatesOut:
    namespace_admin(store, principal, ns)
    gates = SignatureStore(store.engine).set_gates(
        ns, body.max_severity, body.require_signature, body.require_immutable, principal.name
    )
    log_change(request, principal, "gates_set", ns, **body.model_dump())
    return _gates_out(gates)


@router.delete(
    "/v1/namespaces/{ns}/promotion-gates",
    status_code=204,
    response_class=Response,
    summary="Remove the namespace's promotion gates (namespace admins)",
)
def remove_gates(request: Request, ns: str, principal: Caller, store: Store) -> Response:
    namespace_admin(store, principal, ns)
    if not SignatureStore(store.engine).remove_gates(ns):
        raise not_found(f"namespace {ns} has no promotion gates")
    log_change(request, principal, "gates_remove", ns)
    return Response(status_code=204)


# -- promotions
@router.post(
    "/v1/promotions",
    response_model=PromotionOut,
    status_code=201,
    summary="Promote an image to another repository if its gates pass (pull + push)",
    responses={
        400: error_doc("an invalid source or target"),
        403: error_doc("no access, or a gate refused (DENIED; detail.gates has every verdict)"),
    },
)
def promote(
    request: Request,
    body: PromotionRequest,
    principal: AnyCaller,
    registry: RegistryDep,
    store: Store,
) -> PromotionOut:
    source = parse_ref(body.source)
    target = parse_ref(body.target)
    if target.digest:
        raise ApiError(400, "INVALID_REQUEST", "target is REPOSITORY or REPOSITORY:TAG")
    reference = source.digest or source.tag or "latest"
    require_access(request, principal, source.repository, PULL, f"promoting {body.source}")
    require_access(request, principal, target.repository, PUSH, f"promoting to {body.target}")
    try:
        result = PromotionService(registry, store.engine).promote(
            source.repository, reference, target.repository, target.tag, principal.name
        )
    except PromotionRefused as exc:
        log_change(
            request,
            principal,
            "promote_refused",
            target.repository,
            source=body.source,
            reason=exc.message[:500],
        )
        raise
    log_change(
        request,
        principal,
        "promote",
        f"{result.target}:{result.tag}",
        source=result.source,
        digest=result.digest,
    )
    return PromotionOut.model_validate(result.to_dict())
