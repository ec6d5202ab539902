"""`serve --tls-cert --tls-key`: HTTPS with a certificate from a test CA, checked by httpx
and by skopeo (which verifies the chain against the CA given in --dest-cert-dir and
refuses without it), including the Docker token flow, whose realm must be https too."""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.conftest import LiveRegistry, add_user

from .oci_layout import build_image_layout
from .skopeo import Skopeo

PASSWORD = "tls-password"
HSTS_SECONDS = 600


@dataclass
class Authority:
    cert_dir: Path  # holds ca.crt only: what skopeo's --*-cert-dir wants
    ca_file: Path
    server_cert: Path
    server_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_test_ca(root: Path) -> Authority:
    """A CA and a server certificate for 127.0.0.1 and localhost, signed by it."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("cargohold test CA"))
        .issuer_name(_name("cargohold test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_dir = root / "certs.d"
    cert_dir.mkdir(parents=True)
    ca_file = cert_dir / "ca.crt"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server_cert = root / "server.crt"
    server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    server_key = root / "server.key"
    server_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Authority(cert_dir, ca_file, server_cert, server_key)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return make_test_ca(tmp_path_factory.mktemp("tls-ca"))


@pytest.fixture(scope="module")
def server(ca: Authority, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRegistry]:
    data_dir = tmp_path_factory.mktemp("tls") / "data"
    add_user(data_dir, "alice", PASSWORD, admin=True)
    live = LiveRegistry(
        data_dir,
        {
            "CARGOHOLD_TLS_CERT": str(ca.server_cert),
            "CARGOHOLD_TLS_KEY": str(ca.server_key),
            "CARGOHOLD_HSTS_SECONDS": str(HSTS_SECONDS),
        },
    )
    try:
        yield live
    finally:
        live.stop()


def test_https_with_the_test_ca_and_hsts(server: LiveRegistry, ca: Authority) -> None:
    assert server.url.startswith("https://")
    response = httpx.get(
        f"{server.url}/v2/", verify=ssl.create_default_context(cafile=ca.ca_file)
    )
    assert response.status_code == 401  # users exist: authentication asked for
    assert response.headers["strict-transport-security"] == f"max-age={HSTS_SECONDS}"
    challenge = response.headers["www-authenticate"]
    assert f'realm="https://{server.host}/token"' in challenge  # the token realm is HTTPS too
    with pytest.raises(httpx.ConnectError):  # the chain is checked: unknown CA refused
        httpx.get(f"{server.url}/v2/")
    with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port gets no answer
        httpx.get(f"http://{server.host}/v2/", timeout=5)


def test_skopeo_pushes_and_pulls_over_https_with_token_auth(
    server: LiveRegistry, ca: Authority, skopeo: Skopeo, tmp_path: Path
) -> None:
    image = build_image_layout(tmp_path / "image", seed="tls-app")
    target = f"docker://{server.host}/tls/app:1.0"
    creds = f"alice:{PASSWORD}"
    skopeo.copy(image.reference, target, "--dest-cert-dir", ca.cert_dir, "--dest-creds", creds)
    pulled = skopeo.copy(
        target, f"oci:{tmp_path / 'out'}:1.0", "--src-cert-dir", ca.cert_dir,
        "--src-creds", creds,
    )
    assert f"https://{server.host}/v2/tls/app/manifests/1.0" in " ".join(pulled.requests)
    digest = skopeo.inspect(target, "--cert-dir", ca.cert_dir, "--creds", creds).json()["Digest"]
    assert digest == image.digest

    untrusted = skopeo.inspect(target, "--creds", creds, check=False)
    assert untrusted.returncode != 0
    assert "certificate" in untrusted.stderr  # x509: certificate signed by unknown authority


def test_a_bad_key_pair_stops_the_start_with_a_clear_message(
    ca: Authority, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", "serve", "--port", "0", "--data-dir",
         str(tmp_path / "data"), "--tls-cert", str(ca.ca_file), "--tls-key",
         str(ca.server_key)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert "cannot use TLS certificate" in result.stderr
    assert "Traceback" not in result.stderr
