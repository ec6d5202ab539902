"""Token auth for the auth-on measurements: the Docker token flow against both registries.

cargohold issues its own tokens (`/token`, ES256 JWTs) for an admin created at start from
CARGOHOLD_ADMIN_USER / CARGOHOLD_ADMIN_PASSWORD. Distribution only verifies tokens, so this
module also runs the token server it is configured to trust: a small HTTP server in a
thread of the bench process on a free loopback port, which checks Basic credentials and
signs ES256 JWTs with a key whose self-signed certificate is Distribution's
`rootcertbundle` (the key is named in the JWT header by its libtrust key id, `kid`, which
is how Distribution 2.8 finds a trusted key).

Clients do what docker does: `GET /v2/` answers 401 with `WWW-Authenticate: Bearer
realm=...,service=...`, then `GET <realm>?service=...&scope=...` with Basic credentials
returns the token, sent as `Authorization: Bearer <token>` on every request after that.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from servers import HOST

USER = "benchadmin"
PASSWORD = "bench-" + secrets.token_hex(12)
DIST_SERVICE = "distribution-bench"
DIST_ISSUER = "cargohold-bench-token-server"
TOKEN_TTL_S = 3600


def libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """docker/libtrust's key id: base32 of the first 240 bits of sha256(DER), in 4s."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i : i + 4] for i in range(0, len(b32), 4))


class TokenServer:
    """The token issuer Distribution trusts (Docker token protocol, GET only)."""

    def __init__(self, workdir: Path):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = libtrust_key_id(self.key.public_key())
        self.cert_path = workdir / "token-server.pem"
        self.cert_path.write_bytes(self._self_signed_cert())
        self.issued = 0
        self._httpd: ThreadingHTTPServer | None = None
        self.realm = ""

    def _self_signed_cert(self) -> bytes:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DIST_ISSUER)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, service: str, scopes: list[str], subject: str) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": DIST_ISSUER,
            "sub": subject,
            "aud": service,
            "exp": now + TOKEN_TTL_S,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        self.issued += 1
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.kid})

    def start(self) -> str:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                u = urlsplit(self.path)
                if u.path != "/token":
                    self._answer(404, {"error": "not found"})
                    return
                want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != want:
                    self._answer(401, {"error": "bad credentials"})
                    return
                q = parse_qs(u.query)
                token = server.issue(q.get("service", [""])[0], q.get("scope", []), USER)
                self._answer(200, {"token": token, "access_token": token})

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:  # quiet
                pass

        self._httpd = ThreadingHTTPServer((HOST, 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.realm = f"http://{HOST}:{self._httpd.server_address[1]}/token"
        return self.realm

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def distribution_auth_yaml(realm: str, cert_path: Path) -> str:
    """The `auth:` section of Distribution's configuration."""
    return (
        "auth:\n"
        "  token:\n"
        f"    realm: {realm}\n"
        f"    service: {DIST_SERVICE}\n"
        f"    issuer: {DIST_ISSUER}\n"
        f"    rootcertbundle: {cert_path}\n"
    )


def cargohold_auth_env() -> dict[str, str]:
    """An admin created at start: from then on cargohold enforces access control."""
    return {"CARGOHOLD_ADMIN_USER": USER, "CARGOHOLD_ADMIN_PASSWORD": PASSWORD}


_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def fetch_token(base: str, scopes: list[str]) -> str:
    """The Docker token flow: challenge at /v2/, then the realm with Basic credentials."""
    assert base.startswith(f"http://{HOST}:"), base  # loopback only
    with httpx.Client(timeout=30, trust_env=False) as http:
        r = http.get(base + "/v2/")
        challenge = r.headers.get("www-authenticate", "")
        if r.status_code != 401 or not challenge.lower().startswith("bearer "):
            raise RuntimeError(f"{base}/v2/: no bearer challenge ({r.status_code} {challenge!r})")
        params = dict(_CHALLENGE.findall(challenge))
        realm = params["realm"]
        if urlsplit(realm).hostname != HOST:
            raise RuntimeError(f"token realm is not on loopback: {realm}")
        query = urlencode([("service", params.get("service", "")), *(("scope", s) for s in scopes)])
        r = http.get(f"{realm}?{query}", auth=(USER, PASSWORD))
        if r.status_code != 200:
            raise RuntimeError(f"token request to {realm}: HTTP {r.status_code} {r.text[:200]}")
        body = r.json()
        return body.get("token") or body["access_token"]
