"""The signature pull policy end to end: skopeo pushes images, `cargohold keys add` and
`signatures require` (subprocesses on the server's stores) turn the policy on, and
skopeo's pulls are refused until a cosign signature by a trusted key is stored (pushed
over /v2 as cosign stores it: the `sha256-<hex>.sig` tag). A signed index lets skopeo copy
every platform. Servers cache a namespace's policy (and a refusal) for policy_cache_seconds,
here POLICY_CACHE (shorter than the default so the test waits less), so each change is
followed by that wait."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveRegistry
from tests.signatures.signer import OCI_MANIFEST, KeyPair, SignatureManifest, sign, signature_tag

from .oci_layout import build_image_layout, build_index_layout
from .skopeo import Skopeo

PUSH = "--dest-tls-verify=false"
PULL = "--src-tls-verify=false"
POLICY_CACHE = 0.5
SETTLE = POLICY_CACHE + 0.5


def cargohold(server: LiveRegistry, *args: str, code: int = 0) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", *args, "--data-dir", str(server.data_dir)],
        env={**os.environ, **server.extra_env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == code, (result.stdout, result.stderr)
    return result.stdout + result.stderr


def store_signature(server: LiveRegistry, repository: str, digest: str, sig: SignatureManifest):
    """Push a signature manifest over /v2, as cosign does."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for blob_digest, data in sig.blobs.items():
            response = http.post(
                f"/v2/{repository}/blobs/uploads/", params={"digest": blob_digest}, content=data
            )
            assert response.status_code == 201, response.text
        response = http.put(
            f"/v2/{repository}/manifests/{signature_tag(digest)}",
            content=sig.body,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    live = LiveRegistry(
        tmp_path_factory.mktemp("signature-policy") / "data",
        {"CARGOHOLD_POLICY_CACHE_SECONDS": str(POLICY_CACHE)},
    )
    try:
        yield live
    finally:
        live.stop()


def test_unsigned_images_are_refused_until_signed_by_a_trusted_key(
    server: LiveRegistry, skopeo: Skopeo, tmp_path: Path
):
    image = build_image_layout(tmp_path / "image", seed="signed-app")
    index = build_index_layout(tmp_path / "index", seed="signed-multi")
    skopeo.copy(image.reference, f"docker://{server.host}/prod/app:1.0", PUSH)
    skopeo.copy(index.reference, f"docker://{server.host}/prod/multi:1.0", PUSH, "--all")

    release, stranger = KeyPair.ecdsa(), KeyPair.ecdsa()
    key_file = tmp_path / "cosign.pub"
    key_file.write_text(release.public_pem)
    refused = cargohold(server, "signatures", "require", "prod", code=1)
    assert "trusts no keys yet" in refused
    cargohold(server, "keys", "add", "prod", "release", "--file", str(key_file))
    cargohold(server, "signatures", "require", "prod")
    time.sleep(SETTLE)

    pull = skopeo.copy(
        f"docker://{server.host}/prod/app:1.0", f"oci:{tmp_path / 'out'}:x", PULL, check=False
    )
    assert pull.returncode != 0
    assert "requires a cosign signature" in pull.stderr
    assert signature_tag(image.digest) in pull.stderr  # what is missing
    assert "cosign sign --key" in pull.stderr  # how to fix it

    # Signed by a key prod does not trust: still refused.
    store_signature(server, "prod/app", image.digest, sign(stranger, image.digest))
    time.sleep(SETTLE)  # the earlier refusal is cached that long
    pull = skopeo.copy(
        f"docker://{server.host}/prod/app:1.0", f"oci:{tmp_path / 'out'}:x", PULL, check=False
    )
    assert pull.returncode != 0 and "does not verify with any trusted key" in pull.stderr

    store_signature(server, "prod/app", image.digest, sign(release, image.digest))
    deadline = time.monotonic() + 15
    while True:  # a refusal is cached for a few seconds
        pull = skopeo.copy(
            f"docker://{server.host}/prod/app:1.0", f"oci:{tmp_path / 'out'}:x", PULL, check=False
        )
        if pull.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert pull.returncode == 0, pull.describe()
    verified = cargohold(server, "signatures", "verify", "prod/app:1.0")
    assert "verified" in verified and "release" in verified

    # The signature manifest itself is served (cosign verify reads it).
    sig = httpx.get(
        f"{server.url}/v2/prod/app/manifests/{signature_tag(image.digest)}",
        headers={"Accept": OCI_MANIFEST},
    )
    assert sig.status_code == 200

    # An index signed (as cosign signs a multi-platform tag): every platform is served.
    multi = f"docker://{server.host}/prod/multi:1.0"
    assert (
        skopeo.copy(multi, f"oci:{tmp_path / 'multi'}:x", PULL, "--all", check=False).returncode
        != 0
    )
    store_signature(server, "prod/multi", index.digest, sign(release, index.digest))
    time.sleep(SETTLE)
    skopeo.copy(multi, f"oci:{tmp_path / 'multi'}:x", PULL, "--all")

    # A scan policy refusing unscanned images still serves signature manifests: cosign
    # reads them to verify, and they are not images (nothing here ran a scan).
    cargohold(server, "scan", "policy", "set", "prod", "--severity", "high", "--deny-unscanned")
    time.sleep(SETTLE)
    refused = httpx.get(f"{server.url}/v2/prod/app/manifests/1.0", headers={"Accept": OCI_MANIFEST})
    assert refused.status_code == 403 and "not been scanned" in refused.text
    sig = httpx.get(
        f"{server.url}/v2/prod/app/manifests/{signature_tag(image.digest)}",
        headers={"Accept": OCI_MANIFEST},
    )
    assert sig.status_code == 200, sig.text
    cargohold(server, "scan", "policy", "remove", "prod")

    # Other namespaces are not affected; turning the policy off serves everything again.
    skopeo.copy(image.reference, f"docker://{server.host}/dev/app:1.0", PUSH)
    skopeo.copy(f"docker://{server.host}/dev/app:1.0", f"oci:{tmp_path / 'dev'}:x", PULL)
    cargohold(server, "signatures", "require", "prod", "--off")
    skopeo.copy(image.reference, f"docker://{server.host}/prod/other:1.0", PUSH)
    time.sleep(SETTLE)
    skopeo.copy(f"docker://{server.host}/prod/other:1.0", f"oci:{tmp_path / 'other'}:x", PULL)

