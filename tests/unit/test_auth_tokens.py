"""Bearer tokens: what verifies and what does not."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cargohold.auth.tokens import (
    Access,
    InvalidToken,
    TokenService,
    create_key,
    granted_actions,
)


@pytest.fixture
def service(tmp_path: Path) -> TokenService:
    return TokenService(tmp_path / "keys", "cargohold", ttl=300)


def test_issue_and_verify(service: TokenService) -> None:
    issued = service.issue("alice", [Access("repository", "team/app", ("pull",))])
    claims = service.verify(issued.token)
    assert claims["sub"] == "alice" and claims["aud"] == "cargohold"
    assert granted_actions(claims, "repository", "team/app") == {"pull"}
    assert granted_actions(claims, "repository", "team/other") == set()
    assert jwt.get_unverified_header(issued.token)["kid"]


def test_rotation_keeps_old_tokens_valid(tmp_path: Path) -> None:
    first = TokenService(tmp_path / "keys", "cargohold", ttl=300)
    old = first.issue("alice", []).token
    time.sleep(0.01)
    create_key(tmp_path / "keys")
    second = TokenService(tmp_path / "keys", "cargohold", ttl=300)
    new = second.issue("alice", []).token
    assert jwt.get_unverified_header(old)["kid"] != jwt.get_unverified_header(new)["kid"]
    assert second.verify(old)["sub"] == "alice"
    assert second.verify(new)["sub"] == "alice"


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "cargohold",
        "sub": "alice",
        "aud": "cargohold",
        "exp": now + 60,
        "iat": now,
        "access": [],
    }
    claims.update(overrides)
    return claims


def test_forgeries_are_rejected(service: TokenService, tmp_path: Path) -> None:
    kid = sorted((tmp_path / "keys").glob("*.pem"))[0].stem
    stranger = ec.generate_private_key(ec.SECP256R1())
    forged = [
        jwt.encode(_claims(), stranger, algorithm="ES256", headers={"kid": kid}),
        jwt.encode(_claims(), stranger, algorithm="ES256", headers={"kid": "unknown"}),
        jwt.encode(_claims(), None, algorithm="none", headers={"kid": kid}),
        jwt.encode(_claims(), "s" * 32, algorithm="HS256", headers={"kid": kid}),
    ]
    for token in forged:
        with pytest.raises(InvalidToken):
            service.verify(token)


def test_expired_wrong_audience_and_tampered(service: TokenService) -> None:
    good = service.issue("alice", [Access("repository", "a/b", ("pull",))]).token
    header, payload, signature = good.split(".")
    tampered = ".".join(
        [header, payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1], signature]
    )
    with pytest.raises(InvalidToken):
        service.verify(tampered)
    refresh = service.issue_refresh("alice")
    with pytest.raises(InvalidToken):
        service.verify(refresh)  # a refresh token is not an access token
    assert service.verify(refresh, refresh=True)["sub"] == "alice"
    with pytest.raises(InvalidToken):
        service.verify(good, refresh=True)
    other = TokenService(service._dir, "another-service", ttl=300)
    with pytest.raises(InvalidToken):
        other.verify(good)
