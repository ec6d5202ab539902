"""End-to-end tests with oras-py (the ``oras`` package), a real OCI artifact client.

Artifacts (files, a directory, a config with a custom media type) are pushed with
``OrasClient.push`` over plain HTTP, pulled back and compared byte by byte; referrers are
pushed with ``subject`` (oras-py's high-level ``push``, and its low-level ``upload_blob`` +
``upload_manifest`` for an OCI 1.1 manifest with ``artifactType``), then listed through
``GET /v2/<name>/referrers/<digest>`` with and without the ``artifactType`` filter.
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from .oci_layout import MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, sha256_digest

EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
TITLE = "org.opencontainers.image.title"
ARTIFACT_CONFIG = "application/vnd.example.cargohold.artifact.config.v1+json"
SIGNATURE_CONFIG = "application/vnd.example.cargohold.signature.config.v1+json"
SBOM_TYPE = "application/vnd.example.cargohold.sbom.v1+json"


def import_oras() -> Any:
    """oras-py, or a failure (never a skip): it is a pinned dev dependency."""
    try:
        import oras.client
        import oras.oci
    except ImportError as exc:  # pragma: no cover - only without the dev extras
        pytest.fail(
            f"oras-py is not installed ({exc}): install the dev extras, "
            "`pip install -e '.[dev]'`",
            pytrace=False,
        )
    return oras


@pytest.fixture
def oras(registry) -> Any:
    """An oras-py client that talks plain HTTP to the live server."""
    module = import_oras()
    return module.client.OrasClient(hostname=registry.host, insecure=True)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def get(url: str, path: str, **params: str) -> httpx.Response:
    accept = f"{MEDIA_TYPE_MANIFEST}, {MEDIA_TYPE_INDEX}"
    response = httpx.get(
        f"{url}/v2/{path}", params=params, headers={"Accept": accept}, follow_redirects=True
    )
    assert response.status_code == 200, (path, response.status_code, response.text)
    return response


def write_files(root: Path) -> dict[str, bytes]:
    """A text file, an incompressible binary file and a config, written under ``root``."""
    rng = random.Random("cargohold oras")
    files = {
        "readme.txt": b"cargohold oras e2e\n" * 50,
        "data.bin": rng.randbytes(300_000),
        "config.json": json.dumps({"tool": "cargohold-e2e", "version": 1}).encode(),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    return files


def assert_pushed_manifest(url: str, repo: str, response: Any) -> tuple[str, dict[str, Any]]:
    """The manifest PUT succeeded and the server serves bytes that match its digest."""
    assert response.status_code == 201, (response.status_code, response.text)
    digest = response.headers["Docker-Content-Digest"]
    served = get(url, f"{repo}/manifests/{digest}")
    assert sha256_digest(served.content) == digest
    assert served.headers["content-type"] == MEDIA_TYPE_MANIFEST
    return digest, json.loads(served.content)


@pytest.mark.parametrize("chunked", [False, True], ids=["monolithic", "chunked"])
def test_push_pull_files(
    oras, registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    files = write_files(tmp_path)
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "nested.txt").write_bytes(b"nested file\n")
    monkeypatch.chdir(tmp_path)  # oras-py only pushes paths under the working directory
    repo = unique("team/artifact")
    target = f"{registry.host}/{repo}:v1"

    response = oras.push(
        target=target,
        files=["readme.txt:text/plain", "data.bin", "tree"],
        manifest_config=f"config.json:{ARTIFACT_CONFIG}",
        manifest_annotations={"org.example.purpose": "e2e"},
        do_chunked=chunked,
        chunk_size=64 * 1024,
        quiet=True,
    )
    digest, manifest = assert_pushed_manifest(registry.url, repo, response)
    assert get(registry.url, f"{repo}/manifests/v1").headers["docker-content-digest"] == digest
    assert manifest["config"] == {
        "mediaType": ARTIFACT_CONFIG,
        "size": len(files["config.json"]),
        "digest": sha256_digest(files["config.json"]),
    }
    assert get(registry.url, f"{repo}/blobs/{manifest['config']['digest']}").content == (
        files["config.json"]
    )
    assert manifest["annotations"] == {"org.example.purpose": "e2e"}
    layers = {layer["annotations"][TITLE]: layer for layer in manifest["layers"]}
    assert list(layers) == ["readme.txt", "data.bin", "tree"]
    assert layers["readme.txt"]["mediaType"] == "text/plain"
    for name in ("readme.txt", "data.bin"):
        assert layers[name]["digest"] == sha256_digest(files[name])
        assert layers[name]["size"] == len(files[name])
        assert get(registry.url, f"{repo}/blobs/{layers[name]['digest']}").content == files[name]
    tree = get(registry.url, f"{repo}/blobs/{layers['tree']['digest']}").content
    assert sha256_digest(tree) == layers["tree"]["digest"]

    out = tmp_path / "pulled"
    pulled = oras.pull(target=target, outdir=str(out))
    assert sorted(Path(p).name for p in pulled) == ["data.bin", "readme.txt", "tree"]
    assert (out / "readme.txt").read_bytes() == files["readme.txt"]
    assert (out / "data.bin").read_bytes() == files["data.bin"]
    assert (out / "tree" / "sub" / "nested.txt").read_bytes() == b"nested file\n"
    assert oras.get_manifest(target) == manifest
    assert oras.get_tags(f"{registry.host}/{repo}") == ["v1"]


def push_sbom_referrer(oras, registry, tmp_path: Path, repo: str, subject: dict[str, Any]):
    """An OCI 1.1 artifact manifest (``artifactType``, empty config, ``subject``) pushed by
    digest with oras-py's low-level API. Returns (digest, manifest)."""
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"{}")
    sbom = tmp_path / "sbom.spdx.json"
    sbom.write_bytes(json.dumps({"spdxVersion": "SPDX-2.3", "name": repo}).encode())
    container = oras.get_container(f"{registry.host}/{repo}")
    config = {"mediaType": EMPTY_MEDIA_TYPE, "digest": sha256_digest(b"{}"), "size": 2}
    layer = {
        "mediaType": "application/spdx+json",
        "digest": sha256_digest(sbom.read_bytes()),
        "size": sbom.stat().st_size,
        "annotations": {TITLE: sbom.name},
    }
    for path, descriptor in ((empty, config), (sbom, layer)):
        response = oras.upload_blob(str(path), container, descriptor)
        assert response.status_code in (200, 201), (response.status_code, response.text)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "artifactType": SBOM_TYPE,
        "config": config,
        "layers": [layer],
        "subject": subject,
        "annotations": {"org.example.kind": "sbom"},
    }
    # requests serializes ``json=`` with json.dumps' defaults: that is the digest to expect.
    digest = sha256_digest(json.dumps(manifest).encode())
    by_digest = oras.get_container(f"{registry.host}/{repo}@{digest}")
    response = oras.upload_manifest(manifest, by_digest)
    pushed, served = assert_pushed_manifest(registry.url, repo, response)
    assert pushed == digest
    assert served == manifest
    assert response.headers["OCI-Subject"] == subject["digest"]
    return digest, manifest


def test_referrers(oras, registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = import_oras()
    files = write_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    repo = unique("team/signed")
    response = oras.push(
        target=f"{registry.host}/{repo}:v1",
        files=["readme.txt"],
        manifest_config=f"config.json:{ARTIFACT_CONFIG}",
        quiet=True,
    )
    subject_digest, _ = assert_pushed_manifest(registry.url, repo, response)
    subject_size = len(get(registry.url, f"{repo}/manifests/{subject_digest}").content)
    subject = {"mediaType": MEDIA_TYPE_MANIFEST, "digest": subject_digest, "size": subject_size}

    # No referrers yet: an empty index, not a 404.
    empty = get(registry.url, f"{repo}/referrers/{subject_digest}")
    assert empty.headers["content-type"] == MEDIA_TYPE_INDEX
    assert json.loads(empty.content)["manifests"] == []

    # A signature through the high-level API: no artifactType, so the config's media type
    # is what the referrers API reports.
    (tmp_path / "sig.json").write_bytes(b'{"signature": "not really"}')
    response = oras.push(
        target=f"{registry.host}/{repo}:sig",
        files=["sig.json:application/vnd.example.signature"],
        manifest_config=f"config.json:{SIGNATURE_CONFIG}",
        manifest_annotations={"org.example.kind": "signature"},
        subject=module.oci.Subject(**subject),
        quiet=True,
    )
    sig_digest, sig_manifest = assert_pushed_manifest(registry.url, repo, response)
    assert response.headers["OCI-Subject"] == subject_digest
    assert sig_manifest["subject"] == subject
    assert "artifactType" not in sig_manifest
    sig_size = len(get(registry.url, f"{repo}/manifests/{sig_digest}").content)

    sbom_digest, sbom_manifest = push_sbom_referrer(oras, registry, tmp_path, repo, subject)
    sbom_size = len(json.dumps(sbom_manifest).encode())

    expected = {
        sig_digest: {
            "mediaType": MEDIA_TYPE_MANIFEST,
            "digest": sig_digest,
            "size": sig_size,
            "artifactType": SIGNATURE_CONFIG,
            "annotations": {"org.example.kind": "signature"},
        },
        sbom_digest: {
            "mediaType": MEDIA_TYPE_MANIFEST,
            "digest": sbom_digest,
            "size": sbom_size,
            "artifactType": SBOM_TYPE,
            "annotations": {"org.example.kind": "sbom"},
        },
    }
    listing = get(registry.url, f"{repo}/referrers/{subject_digest}")
    assert listing.headers["content-type"] == MEDIA_TYPE_INDEX
    index = json.loads(listing.content)
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == MEDIA_TYPE_INDEX
    assert {d["digest"]: d for d in index["manifests"]} == expected
    assert len(index["manifests"]) == 2

    for artifact_type, digest in ((SBOM_TYPE, sbom_digest), (SIGNATURE_CONFIG, sig_digest)):
        filtered = get(registry.url, f"{repo}/referrers/{subject_digest}",
                       artifactType=artifact_type)  # fmt: skip
        assert filtered.headers["oci-filters-applied"] == "artifactType"
        assert json.loads(filtered.content)["manifests"] == [expected[digest]]
    nothing = get(registry.url, f"{repo}/referrers/{subject_digest}", artifactType="x/none")
    assert json.loads(nothing.content)["manifests"] == []

    # The referrers' blobs are real: pull the signature back through oras-py.
    out = tmp_path / "pulled"
    oras.pull(target=f"{registry.host}/{repo}@{sig_digest}", outdir=str(out))
    assert (out / "sig.json").read_bytes() == (tmp_path / "sig.json").read_bytes()
    assert files["readme.txt"] == (tmp_path / "readme.txt").read_bytes()

    # Deleting a referrer (oras-py's delete_tag: HEAD for the digest, DELETE by digest)
    # takes it out of the list.
    assert oras.delete_tag(f"{registry.host}/{repo}", "sig")
    listing = get(registry.url, f"{repo}/referrers/{subject_digest}")
    assert json.loads(listing.content)["manifests"] == [expected[sbom_digest]]
