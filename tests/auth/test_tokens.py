"""The token endpoint (/token, GET and OAuth2 POST), the JWTs it issues, and forged tokens.

Tokens are ES256 JWTs signed with the newest PEM key in ``<data_dir>/keys/<kid>.pem``. The
forgery tests build tokens by hand (a fresh key, ``alg: none``, HS256 with the public key, a
tampered payload, ...); one control test signs with the server's own key to show that a
well-formed token is accepted, so the rejections are about the defect each one carries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tests.api.oci import OCI_MANIFEST, describe, error_codes, manifest_path

from .conftest import Strict, World
from .creds import (
    ANONYMOUS,
    SERVICE,
    Principal,
    b64url_encode,
    bearer_header,
    challenge,
    granted,
    jwt_parts,
    request_token,
    scope,
)

PRIV = "privco/app"
PUB = "pubco/app"


def token_of(resp: httpx.Response) -> str:
    assert resp.status_code == 200, describe(resp)
    body = resp.json()
    assert body["token"] == body["access_token"], body
    return body["token"]


def pull(world: World, token: str, repo: str = PRIV) -> httpx.Response:
    headers = {**bearer_header(token), "Accept": OCI_MANIFEST}
    return httpx.get(f"{world.realm.url}{manifest_path(repo, 'v1')}", headers=headers)


def assert_rejected(resp: httpx.Response) -> None:
    assert resp.status_code == 401, describe(resp)
    assert "UNAUTHORIZED" in error_codes(resp), describe(resp)
    assert challenge(resp)[0] == "Bearer", describe(resp)


# ---------------------------------------------------------------- GET /token


def test_get_token_response_fields_and_claims(world: World) -> None:
    before = int(time.time())
    resp = request_token(world.realm.url, world.users["reader"], [scope(PRIV, "pull")])
    token = token_of(resp)
    body = resp.json()
    assert body["expires_in"] == 300, body
    issued = datetime.fromisoformat(body["issued_at"].replace("Z", "+00:00"))
    assert issued.tzinfo is not None, body
    assert abs(issued.timestamp() - before) < 30, body
    assert "refresh_token" not in body, body

    header, claims = jwt_parts(token)
    assert header["alg"] == "ES256", header
    kid = header["kid"]
    key_file = world.realm.data_dir / "keys" / f"{kid}.pem"
    assert key_file.is_file(), f"no {key_file}: {sorted(key_file.parent.iterdir())}"
    public = serialization.load_pem_private_key(key_file.read_bytes(), None).public_key()
    verified = jwt.decode(token, public, algorithms=["ES256"], audience=SERVICE,
                          issuer="cargohold")
    assert verified == claims
    assert claims["sub"] == "reader"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["nbf"] <= claims["iat"] + 1
    assert abs(claims["iat"] - before) < 30
    assert claims["jti"]
    assert claims["access"] == [{"type": "repository", "name": PRIV, "actions": ["pull"]}]
    other = token_of(request_token(world.realm.url, world.users["reader"], [scope(PRIV)]))
    assert jwt_parts(other)[1]["jti"] != claims["jti"]


def test_token_is_the_intersection_of_asked_and_allowed(world: World) -> None:
    url = world.realm.url
    asked = [scope(PRIV, "pull", "push", "delete")]
    expected = {
        "reader": {"pull"}, "writer": {"pull", "push"},
        "maintainer": {"pull", "push", "delete"}, "root": {"pull", "push", "delete"},
        "outsider": set(),
    }
    for name, actions in expected.items():
        token = token_of(request_token(url, world.users[name], asked))
        assert granted(token, PRIV) == actions, (name, jwt_parts(token)[1])
    writer = world.users["writer"]
    assert granted(token_of(request_token(url, writer, [scope(PRIV, "pull")])), PRIV) == {"pull"}
    assert granted(token_of(request_token(url, world.pat, asked)), PRIV) == {"pull", "push"}
    robot = world.robots[("privco", "pull")]
    assert granted(token_of(request_token(url, robot, asked)), PRIV) == {"pull"}
    assert granted(token_of(request_token(url, robot, [scope(PUB, "pull", "push")])), PUB) == {
        "pull"}


def test_anonymous_token(world: World) -> None:
    resp = request_token(world.realm.url, ANONYMOUS, [scope(PUB, "pull", "push"), scope(PRIV)])
    token = token_of(resp)
    assert jwt_parts(token)[1]["sub"] == ""
    assert granted(token, PUB) == {"pull"}
    assert granted(token, PRIV) == set()
    assert pull(world, token, PUB).status_code == 200
    assert_rejected(pull(world, token, PRIV))


def test_several_scopes_and_account(world: World) -> None:
    resp = request_token(world.realm.url, world.users["writer"],
                         [scope(PRIV, "pull"), scope(PUB, "pull", "push")], account="writer")
    token = token_of(resp)
    assert granted(token, PRIV) == {"pull"}
    assert granted(token, PUB) == {"pull", "push"}
    assert pull(world, token, PRIV).status_code == 200
    assert pull(world, token, PUB).status_code == 200


@pytest.mark.parametrize("who", ["wrong-password", "unknown-user", "robot-wrong-secret"])
def test_bad_credentials_get_401(world: World, who: str) -> None:
    principal = {
        "wrong-password": world.users["orgadmin"].with_password("nope"),
        "unknown-user": Principal("ghost", "ghost", "x"),
        "robot-wrong-secret": world.robots[("privco", "pull")].with_password("nope"),
    }[who]
    resp = request_token(world.realm.url, principal, [scope(PRIV)])
    assert resp.status_code == 401, describe(resp)
    resp = httpx.get(f"{world.realm.url}/v2/", auth=principal.auth)
    assert resp.status_code == 401, describe(resp)


def test_bearer_on_v2_base(world: World) -> None:
    token = token_of(request_token(world.realm.url, world.users["reader"]))
    resp = httpx.get(f"{world.realm.url}/v2/", headers=bearer_header(token))
    assert resp.status_code == 200, describe(resp)


# ---------------------------------------------------------------- POST /token and refresh


def post_token(world: World, **form: str) -> httpx.Response:
    data = {"service": SERVICE, "client_id": "cargohold-tests", **form}
    return httpx.post(f"{world.realm.url}/token", data=data)


def test_post_password_grant_with_refresh_token(world: World) -> None:
    maint = world.users["maintainer"]
    resp = post_token(world, grant_type="password", username="maintainer",
                      password=str(maint.password), access_type="offline",
                      scope=f"{scope(PRIV, 'pull')} {scope(PUB, 'push')}")
    token = token_of(resp)
    refresh = resp.json()["refresh_token"]
    assert isinstance(refresh, str) and refresh, resp.json()
    assert granted(token, PRIV) == {"pull"}
    assert granted(token, PUB) == {"push"}
    assert jwt_parts(token)[1]["sub"] == "maintainer"

    resp = post_token(world, grant_type="refresh_token", refresh_token=refresh,
                      scope=scope(PRIV, "pull", "delete"))
    token = token_of(resp)
    assert jwt_parts(token)[1]["sub"] == "maintainer"
    assert granted(token, PRIV) == {"pull", "delete"}
    assert pull(world, token).status_code == 200
    # The refresh token is bound to its subject: it never grants more than that user may do.
    resp = post_token(world, grant_type="refresh_token", refresh_token=refresh,
                      scope=scope("otherco/app", "pull"))
    assert granted(token_of(resp), "otherco/app") == set()


def test_post_without_offline_has_no_refresh_token(world: World) -> None:
    reader = world.users["reader"]
    resp = post_token(world, grant_type="password", username="reader",
                      password=str(reader.password), scope=scope(PRIV, "pull"))
    token_of(resp)
    assert "refresh_token" not in resp.json()


def test_post_bad_password_and_bad_refresh_token(world: World) -> None:
    resp = post_token(world, grant_type="password", username="maintainer", password="wrong")
    assert resp.status_code == 401, describe(resp)
    resp = post_token(world, grant_type="refresh_token", refresh_token="not-a-refresh-token")
    assert resp.status_code in (400, 401), describe(resp)


def test_get_offline_token_returns_refresh_token(world: World) -> None:
    resp = request_token(world.realm.url, world.users["writer"], [scope(PRIV, "pull")],
                         offline_token="true")
    token_of(resp)
    refresh = resp.json()["refresh_token"]
    resp = post_token(world, grant_type="refresh_token", refresh_token=refresh,
                      scope=scope(PRIV, "pull", "push"))
    assert granted(token_of(resp), PRIV) == {"pull", "push"}


# ---------------------------------------------------------------- WWW-Authenticate


def test_challenge_format(world: World) -> None:
    url = world.realm.url
    resp = httpx.get(f"{url}/v2/")
    assert resp.status_code == 401
    assert "UNAUTHORIZED" in error_codes(resp)
    header = resp.headers["www-authenticate"]
    assert header == f'Bearer realm="{url}/token",service="{SERVICE}"', header

    resp = httpx.get(f"{url}{manifest_path(PRIV, 'v1')}")
    assert resp.status_code == 401
    scheme, params = challenge(resp)
    assert scheme == "Bearer"
    assert params == {"realm": f"{url}/token", "service": SERVICE,
                      "scope": f"repository:{PRIV}:pull"}, resp.headers["www-authenticate"]

    token = token_of(request_token(url, world.users["reader"], [scope(PRIV)]))
    resp = httpx.post(f"{url}/v2/{PRIV}/blobs/uploads/", headers=bearer_header(token))
    assert resp.status_code == 401, describe(resp)
    scheme, params = challenge(resp)
    assert params["error"] == "insufficient_scope", params
    assert params["realm"] == f"{url}/token" and params["service"] == SERVICE, params
    assert "push" in params["scope"].rpartition(":")[2].split(","), params


# ---------------------------------------------------------------- forged tokens


def server_key(world: World) -> tuple[str, ec.EllipticCurvePrivateKey]:
    """The kid and key that sign the server's tokens (the newest PEM file in keys/)."""
    kid = jwt_parts(token_of(request_token(world.realm.url, ANONYMOUS)))[0]["kid"]
    path: Path = world.realm.data_dir / "keys" / f"{kid}.pem"
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return kid, key


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": "cargohold", "aud": SERVICE, "sub": "root", "iat": now, "nbf": now - 5,
            "exp": now + 300, "jti": os.urandom(8).hex(),
            "access": [{"type": "repository", "name": PRIV, "actions": ["pull"]}]}
    return {**base, **overrides}


def unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return ".".join(b64url_encode(json.dumps(part).encode()) for part in (header, payload))


def test_well_formed_token_signed_with_the_server_key_is_accepted(world: World) -> None:
    kid, key = server_key(world)
    token = jwt.encode(claims(), key, algorithm="ES256", headers={"kid": kid})
    assert pull(world, token).status_code == 200


FORGERIES = ["other-key-same-kid", "other-key-unknown-kid", "alg-none", "hs256-public-key",
             "expired", "not-yet-valid", "wrong-aud", "wrong-iss", "tampered-payload",
             "garbage", "no-signature"]


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_token_is_rejected(world: World, forgery: str) -> None:
    kid, key = server_key(world)
    other = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    if forgery == "other-key-same-kid":
        token = jwt.encode(claims(), other, algorithm="ES256", headers={"kid": kid})
    elif forgery == "other-key-unknown-kid":
        token = jwt.encode(claims(), other, algorithm="ES256", headers={"kid": "ABCD:EFGH"})
    elif forgery == "alg-none":
        token = unsigned({"typ": "JWT", "alg": "none", "kid": kid}, claims()) + "."
    elif forgery == "hs256-public-key":
        pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        signing_input = unsigned({"typ": "JWT", "alg": "HS256", "kid": kid}, claims())
        mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{b64url_encode(mac)}"
    elif forgery == "expired":
        old = claims(iat=now - 900, nbf=now - 900, exp=now - 600)
        token = jwt.encode(old, key, algorithm="ES256", headers={"kid": kid})
    elif forgery == "not-yet-valid":
        future = claims(iat=now + 600, nbf=now + 600, exp=now + 900)
        token = jwt.encode(future, key, algorithm="ES256", headers={"kid": kid})
    elif forgery == "wrong-aud":
        token = jwt.encode(claims(aud="other-registry"), key, algorithm="ES256",
                           headers={"kid": kid})
    elif forgery == "wrong-iss":
        token = jwt.encode(claims(iss="evil"), key, algorithm="ES256", headers={"kid": kid})
    elif forgery == "tampered-payload":
        # A genuine token for the public repo, its access rewritten to the private one.
        real = token_of(request_token(world.realm.url, world.users["outsider"], [scope(PUB)]))
        header, _, signature = real.split(".")
        _, payload = jwt_parts(real)
        payload["access"] = [{"type": "repository", "name": PRIV, "actions": ["pull"]}]
        token = f"{header}.{b64url_encode(json.dumps(payload).encode())}.{signature}"
    elif forgery == "garbage":
        token = "not.a.jwt"
    else:  # no-signature: a genuine header and payload without the signature part
        token = jwt.encode(claims(), key, algorithm="ES256", headers={"kid": kid})
        token = token.rpartition(".")[0] + "."
    assert_rejected(pull(world, token))


def test_token_for_repository_a_does_not_open_repository_b(world: World) -> None:
    token = token_of(request_token(world.realm.url, world.users["root"],
                                   [scope("otherco/app", "pull", "push")]))
    assert pull(world, token, "otherco/app").status_code == 200
    resp = pull(world, token, PRIV)
    assert_rejected(resp)
    assert challenge(resp)[1].get("error") == "insufficient_scope"


def test_token_of_another_service_is_rejected(world: World, strict: Strict) -> None:
    """A token minted by the strict server (aud strict-svc, another key) is no good here."""
    token = token_of(request_token(strict.realm.url, strict.admin, [scope(PRIV)],
                                   service=strict.service))
    assert jwt_parts(token)[1]["aud"] == strict.service
    assert_rejected(pull(world, token))


# ---------------------------------------------------------------- settings


def test_token_service_and_ttl_settings(strict: Strict) -> None:
    url = strict.realm.url
    _, params = challenge(httpx.get(f"{url}/v2/"))
    assert params == {"realm": f"{url}/token", "service": strict.service}
    resp = request_token(url, strict.user, [scope("opendoor/app")], service=strict.service)
    token = token_of(resp)
    assert resp.json()["expires_in"] == strict.ttl
    payload = jwt_parts(token)[1]
    assert payload["aud"] == strict.service
    assert payload["exp"] - payload["iat"] == strict.ttl
    headers = {**bearer_header(token), "Accept": OCI_MANIFEST}
    resp = httpx.get(f"{url}{manifest_path('opendoor/app', 'v1')}", headers=headers)
    assert resp.status_code == 200, describe(resp)


def test_key_rotation_newest_key_signs_all_keys_verify(strict: Strict) -> None:
    """A PEM key dropped into keys/ verifies at once and, being the newest, signs new tokens.

    Runs last against the strict server: from here on that server signs with this key.
    """
    url, service = strict.realm.url, strict.service
    repo_scope = [scope("opendoor/app")]
    old = token_of(request_token(url, strict.user, repo_scope, service=service))
    key = ec.generate_private_key(ec.SECP256R1())
    keys_dir = strict.realm.data_dir / "keys"
    kid = "rotatedtestkey"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    (keys_dir / f"{kid}.pem").write_bytes(pem)
    future = time.time() + 5
    os.utime(keys_dir / f"{kid}.pem", (future, future))
    mine = jwt.encode(claims(aud=service, sub="carol", access=[
        {"type": "repository", "name": "opendoor/app", "actions": ["pull"]}]),
        key, algorithm="ES256", headers={"kid": kid})

    def works(token: str) -> bool:
        headers = {**bearer_header(token), "Accept": OCI_MANIFEST}
        resp = httpx.get(f"{url}{manifest_path('opendoor/app', 'v1')}", headers=headers)
        return resp.status_code == 200

    deadline = time.monotonic() + 15
    signer = ""
    while time.monotonic() < deadline and not (signer == kid and works(mine)):
        time.sleep(0.5)
        fresh = token_of(request_token(url, strict.user, repo_scope, service=service))
        signer = jwt_parts(fresh)[0]["kid"]
    assert signer == kid, f"new tokens still signed by {signer} 15 s after adding {kid}"
    assert works(mine), "a token signed by the added key is not accepted"
    assert works(old), "a token signed by the previous key no longer verifies"
