"""The pull-through cache against a real upstream registry (cargohold with token auth).

Clients: skopeo for whole-image pulls, httpx for the registry API details.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import httpx
from tests.e2e.oci_layout import (
    build_image_layout,
    build_index_layout,
    compare_layouts,
    read_layout,
)
from tests.e2e.skopeo import Skopeo

from .conftest import Cache, Upstream

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


def push(skopeo: Skopeo, upstream: Upstream, layout: Path, repo: str, tag: str, *opts: str):
    skopeo.copy(
        f"oci:{layout}:{tag}",
        f"docker://{upstream.host}/{upstream.user}/{repo}:{tag}",
        "--dest-tls-verify=false",
        "--dest-creds",
        upstream.creds,
        *opts,
    )


def pull(skopeo: Skopeo, cache: Cache, ref: str, dest: Path, tag: str, *opts: str, check=True):
    return skopeo.copy(
        f"docker://{cache.host}/{ref}",
        f"oci:{dest}:{tag}",
        "--src-tls-verify=false",
        *opts,
        check=check,
    )


def add_rule(cache: Cache, upstream: Upstream, namespace: str = "hub", **options):  # type: ignore[no-untyped-def]
    options.setdefault("username", upstream.user)
    options.setdefault("password", upstream.password)
    options.setdefault("remote_prefix", upstream.user)
    return cache.rules.add(namespace, upstream.url, **options)


def manifest_digest(client: httpx.Client, path: str) -> httpx.Response:
    return client.get(path, headers={"Accept": ACCEPT})


def test_first_pull_stores_everything_and_later_pulls_need_no_upstream(
    upstream: Upstream, cache: Cache, skopeo: Skopeo, tmp_path: Path
) -> None:
    layout = build_image_layout(tmp_path / "src", "1.0", seed="first", payload_bytes=200_000)
    push(skopeo, upstream, layout.path, "app", "1.0")
    add_rule(cache, upstream)

    pull(skopeo, cache, "hub/app:1.0", tmp_path / "first", "1.0")
    assert compare_layouts(layout, read_layout(tmp_path / "first", "1.0")) == []
    assert upstream.counter.count("GET", "/blobs/sha256:", 200) == len(layout.blobs) - 1

    upstream.stop()
    pull(skopeo, cache, "hub/app:1.0", tmp_path / "offline", "1.0")
    assert compare_layouts(layout, read_layout(tmp_path / "offline", "1.0")) == []
    pull(skopeo, cache, f"hub/app@{layout.digest}", tmp_path / "by-digest", "d")
    assert read_layout(tmp_path / "by-digest", "d").digest == layout.digest

    with cache.client() as client:
        tags = client.get("/v2/hub/app/tags/list").json()
        assert tags["tags"] == ["1.0"]  # the tag is kept on the cached image
    meta = cache.extra[0].state.registry.meta  # type: ignore[attr-defined]
    (usage,) = meta.namespace_usage("hub")  # cached content counts in usage
    blobs = sum(len(data) for digest, data in layout.blobs.items() if digest != layout.digest)
    assert usage.name == "hub"
    assert usage.stored_bytes == blobs


def test_moved_tag_is_seen_after_the_ttl_not_before(
    upstream: Upstream, cache: Cache, skopeo: Skopeo, tmp_path: Path
) -> None:
    first = build_image_layout(tmp_path / "a", "1.0", seed="ttl-a")
    second = build_image_layout(tmp_path / "b", "1.0", seed="ttl-b")
    push(skopeo, upstream, first.path, "moving", "1.0")
    add_rule(cache, upstream, tag_ttl_seconds=3)
    with cache.client() as client:
        assert (
            manifest_digest(client, "/v2/hub/moving/manifests/1.0").headers["docker-content-digest"]
            == first.digest
        )
        push(skopeo, upstream, second.path, "moving", "1.0")
        heads = upstream.counter.count("HEAD", "/manifests/1.0")
        again = manifest_digest(client, "/v2/hub/moving/manifests/1.0")
        assert again.headers["docker-content-digest"] == first.digest  # within the TTL
        time.sleep(3.2)
        moved = manifest_digest(client, "/v2/hub/moving/manifests/1.0")
        assert moved.headers["docker-content-digest"] == second.digest
        # revalidated with a HEAD (and only the GET of the new manifest after it)
        assert upstream.counter.count("HEAD", "/manifests/1.0") >= heads + 1
    pull(skopeo, cache, "hub/moving:1.0", tmp_path / "moved", "1.0")
    assert compare_layouts(second, read_layout(tmp_path / "moved", "1.0")) == []


def test_upstream_down_serves_stale_or_a_clear_error(
    upstream: Upstream, cache: Cache, skopeo: Skopeo, tmp_path: Path
) -> None:
    layout = build_image_layout(tmp_path / "src", "1.0", seed="stale")
    other = build_image_layout(tmp_path / "other", "2.0", seed="stale-other")
    push(skopeo, upstream, layout.path, "app", "1.0")
    push(skopeo, upstream, other.path, "app", "2.0")
    add_rule(cache, upstream, tag_ttl_seconds=0)
    with cache.client() as client:
        assert manifest_digest(client, "/v2/hub/app/manifests/1.0").status_code == 200
        upstream.stop()
        stale = manifest_digest(client, "/v2/hub/app/manifests/1.0")
        assert stale.status_code == 200
        assert stale.headers["docker-content-digest"] == layout.digest
        # digest pulls are never revalidated
        by_digest = manifest_digest(client, f"/v2/hub/app/manifests/{layout.digest}")
        assert by_digest.status_code == 200
        # never cached: a clear error, in the spec's shape
        missing = manifest_digest(client, "/v2/hub/app/manifests/2.0")
        assert missing.status_code == 503
        assert missing.json()["errors"][0]["code"] == "UNAVAILABLE"
        assert upstream.url in missing.json()["errors"][0]["message"]
        blob = client.get(f"/v2/hub/app/blobs/{other.images[0].config.digest}")
        assert blob.status_code == 503
        assert blob.json()["errors"][0]["code"] == "UNAVAILABLE"

        cache.rules.update("hub", {"serve_stale_on_error": False})
        refused = manifest_digest(client, "/v2/hub/app/manifests/1.0")
        assert refused.status_code == 503, refused.text
        assert refused.json()["errors"][0]["code"] == "UNAVAILABLE"
        assert manifest_digest(client, f"/v2/hub/app/manifests/{layout.digest}").status_code == 200


def test_an_index_with_every_platform(
    upstream: Upstream, cache: Cache, skopeo: Skopeo, tmp_path: Path
) -> None:
    layout = build_index_layout(tmp_path / "src", "1.0", seed="multi-proxy")
    push(skopeo, upstream, layout.path, "multi", "1.0", "--all")
    add_rule(cache, upstream)
    pull(skopeo, cache, "hub/multi:1.0", tmp_path / "pulled", "1.0", "--all")
    assert compare_layouts(layout, read_layout(tmp_path / "pulled", "1.0")) == []
    upstream.stop()
    pull(skopeo, cache, "hub/multi:1.0", tmp_path / "again", "1.0", "--all")
    assert compare_layouts(layout, read_layout(tmp_path / "again", "1.0")) == []


def test_concurrent_misses_make_one_upstream_fetch(
    upstream: Upstream, cache: Cache, skopeo: Skopeo, tmp_path: Path
) -> None:
    layout = build_image_layout(
        tmp_path / "src", "1.0", seed="big", layers=1, payload_bytes=8_000_000
    )
    push(skopeo, upstream, layout.path, "big", "1.0")
    add_rule(cache, upstream)
    with cache.client() as client:
        manifest = json.loads(manifest_digest(client, "/v2/hub/big/manifests/1.0").content)
    layer = manifest["layers"][0]["digest"]
    results: list[bytes | Exception] = []

    def fetch() -> None:
        try:
            with httpx.Client(base_url=cache.url, timeout=60) as own:
                response = own.get(f"/v2/hub/big/blobs/{layer}")
                response.raise_for_status()
                results.append(response.content)
        except Exception as exc:  # reported below
            results.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 10
    for body in results:
        assert isinstance(body, bytes), body
        assert "sha256:" + hashlib.sha256(body).hexdigest() == layer
    assert upstream.counter.count("GET", f"/blobs/{layer}", 200) == 1
    # and once stored, served locally
    with cache.client() as client:
        assert client.get(f"/v2/hub/big/blobs/{layer}").status_code == 200
    assert upstream.counter.count("GET", f"/blobs/{layer}", 200) == 1


def test_containerd_ns_parameter(
    upstream: Upstream, cache: Cache, skopeo: Skopeo, tmp_path: Path
) -> None:
    layout = build_image_layout(tmp_path / "src", "1.0", seed="ns")
    push(skopeo, upstream, layout.path, "app", "1.0")
    add_rule(cache, upstream, "mirror", remote_prefix=None, mirror_of="upstream.example")
    with cache.client() as client:
        name = f"{upstream.user}/app"
        response = manifest_digest(client, f"/v2/{name}/manifests/1.0?ns=upstream.example")
        assert response.status_code == 200, response.text
        assert response.headers["docker-content-digest"] == layout.digest
        config = json.loads(response.content)["config"]["digest"]
        blob = client.get(f"/v2/{name}/blobs/{config}?ns=upstream.example")
        assert blob.status_code == 200
        assert "sha256:" + hashlib.sha256(blob.content).hexdigest() == config
        # stored under the rule's namespace
        assert client.get(f"/v2/mirror/{name}/tags/list").json()["tags"] == ["1.0"]
        # without ?ns= (or another host) the name is a plain local repository
        assert manifest_digest(client, f"/v2/{name}/manifests/1.0").status_code == 404


def test_credentials_token_auth_and_a_wrong_password(
    upstream: Upstream, cache: Cache, skopeo: Skopeo, tmp_path: Path
) -> None:
    layout = build_image_layout(tmp_path / "src", "1.0", seed="creds")
    push(skopeo, upstream, layout.path, "private", "1.0")
    add_rule(cache, upstream, "good")
    add_rule(cache, upstream, "bad", password="wrong-password")
    add_rule(cache, upstream, "anon", username=None, password=None)
    with cache.client() as client:
        ok = manifest_digest(client, "/v2/good/private/manifests/1.0")
        assert ok.status_code == 200
        assert upstream.counter.count("GET", "/token", 200) >= 1  # Docker token auth was used
        bad = manifest_digest(client, "/v2/bad/private/manifests/1.0")
        assert bad.status_code == 502, bad.text
        error = bad.json()["errors"][0]
        assert error["code"] == "DENIED"
        assert "credentials" in error["message"]
        anonymous = manifest_digest(client, "/v2/anon/private/manifests/1.0")
        assert anonymous.status_code in (502, 404), anonymous.text
        assert anonymous.json()["errors"][0]["code"] in ("DENIED", "MANIFEST_UNKNOWN")
