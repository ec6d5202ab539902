"""Push replication from a live cargohold to a second cargohold with token auth."""

from __future__ import annotations

from pathlib import Path

import httpx
from tests.api.oci import manifest_path, push_artifact, push_image, push_index

from cargohold.replication.store import SUCCEEDED
from cargohold.signatures.cosign import signature_tag

from .conftest import Dest, Source, skopeo_copy_by_digest, unique_name

MANIFEST_ACCEPT = {
    "Accept": "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json"
}


def remote_manifest(http: httpx.Client, repo: str, ref: str) -> httpx.Response:
    return http.get(manifest_path(repo, ref), headers=MANIFEST_ACCEPT)


def add_endpoint(source: Source, dest: Dest) -> str:
    name = unique_name("dest-")
    source.store.add_endpoint(name, dest.url, username=dest.user, secret=dest.password)
    return name


def test_event_rule_replicates_a_pushed_tag_byte_identically(source: Source, dest: Dest) -> None:
    ns = unique_name("team")
    endpoint = add_endpoint(source, dest)
    rule = source.store.add_rule(
        unique_name("ev-"),
        endpoint=endpoint,
        direction="push",
        source=f"{ns}/*",
        tags="v*",
        trigger="event",
    )
    try:
        image = push_image(source.http, f"{ns}/app", "v1", layers=2)
        push_image(source.http, f"{ns}/app", "dev")  # tag pattern: not replicated
        push_image(source.http, f"other{ns}/app", "v1")  # not in the namespace
        [execution] = source.wait_for_executions(rule.id, 1)
        assert execution.state == SUCCEEDED, execution
        assert execution.trigger == "event"
        assert (execution.images, execution.manifests, execution.blobs_copied) == (1, 1, 3)
        with dest.client() as http:
            got = remote_manifest(http, f"{ns}/app", "v1")
            assert got.status_code == 200, got.text
            assert got.content == image.body
            assert got.headers["docker-content-digest"] == image.digest
            for digest, data in image.blobs.items():
                assert http.get(f"/v2/{ns}/app/blobs/{digest}").content == data
            assert remote_manifest(http, f"{ns}/app", "dev").status_code == 404
            assert remote_manifest(http, f"other{ns}/app", "v1").status_code == 404
        [task] = source.store.tasks(execution.id)
        assert (task.source, task.destination, task.digest) == (
            f"{ns}/app:v1",
            f"{ns}/app:v1",
            image.digest,
        )

        # A manual run of the whole rule: nothing to copy, every blob HEAD-free (the
        # manifest is there), the image counted.
        again = source.wait(source.store.enqueue(rule.id, "manual").id)
        assert again.state == SUCCEEDED, again
        assert (again.images, again.manifests, again.blobs_copied, again.bytes) == (1, 0, 0, 0)
    finally:
        source.store.update_rule(rule.id, enabled=False)


def test_index_referrers_and_cosign_signature_arrive(
    source: Source, dest: Dest, tmp_path: Path
) -> None:
    ns = unique_name("multi")
    repo = f"{ns}/app"
    endpoint = add_endpoint(source, dest)
    rule = source.store.add_rule(
        unique_name("idx-"),
        endpoint=endpoint,
        direction="push",
        source=repo,
        tags="*",
        dest_prefix="mirror",
        trigger="manual",
    )
    children = [push_image(source.http, repo) for _ in range(3)]
    index = push_index(source.http, repo, children, "1.0")
    sbom = push_artifact(source.http, repo, index)
    child_sig = push_artifact(source.http, repo, children[1], "application/vnd.dev.sig")
    cosign = push_image(source.http, repo, signature_tag(index.digest))

    execution = source.wait(source.store.enqueue(rule.id, "manual").id)
    assert execution.state == SUCCEEDED, execution
    # index + 3 platforms + SBOM + child signature + cosign signature
    assert execution.manifests == 7
    with dest.client() as http:
        target = f"mirror/{repo}"
        got = remote_manifest(http, target, "1.0")
        assert got.status_code == 200 and got.content == index.body
        for pushed in (*children, sbom, child_sig, cosign):
            assert remote_manifest(http, target, pushed.digest).content == pushed.body
        sig = remote_manifest(http, target, signature_tag(index.digest))
        assert sig.headers["docker-content-digest"] == cosign.digest
        referrers = http.get(f"/v2/{target}/referrers/{index.digest}").json()["manifests"]
        assert [r["digest"] for r in referrers] == [sbom.digest]
        referrers = http.get(f"/v2/{target}/referrers/{children[1].digest}").json()
        assert [r["digest"] for r in referrers["manifests"]] == [child_sig.digest]
    # A client pulls the replicated image by digest, every platform.
    creds = (dest.user, dest.password)
    pulled = skopeo_copy_by_digest(dest.host, target, index.digest, creds, tmp_path / "pulled")
    assert pulled == index.digest

    # The second run sends nothing.
    before = dest.counter.count("PUT", "/")
    again = source.wait(source.store.enqueue(rule.id, "manual").id)
    assert again.state == SUCCEEDED, again
    assert (again.manifests, again.blobs_copied, again.blobs_mounted) == (0, 0, 0)
    assert dest.counter.count("PUT", "/") == before
    assert dest.counter.count("POST", "/blobs/uploads") == execution.blobs_copied


def test_blobs_the_destination_has_are_skipped_or_mounted(source: Source, dest: Dest) -> None:
    ns = unique_name("mnt")
    endpoint = add_endpoint(source, dest)
    image = push_image(source.http, f"{ns}/one", "v1", layers=2)
    # The same image in a second repository: its blobs are in the destination's first one.
    for digest, data in image.blobs.items():
        source.http.post(f"/v2/{ns}/two/blobs/uploads/", params={"digest": digest}, content=data)
    assert (
        source.http.put(
            manifest_path(f"{ns}/two", "v1"),
            content=image.body,
            headers={"Content-Type": image.media_type},
        ).status_code
        == 201
    )
    first = source.store.add_rule(
        unique_name("one-"),
        endpoint=endpoint,
        direction="push",
        source=f"{ns}/one",
    )
    second = source.store.add_rule(
        unique_name("two-"),
        endpoint=endpoint,
        direction="push",
        source=f"{ns}/two",
    )
    one = source.wait(source.store.enqueue(first.id, "manual").id)
    assert (one.state, one.blobs_copied, one.blobs_mounted) == (SUCCEEDED, 3, 0), one
    two = source.wait(source.store.enqueue(second.id, "manual").id)
    assert (two.state, two.blobs_copied, two.blobs_mounted) == (SUCCEEDED, 0, 3), two
    mounts = [p for m, p in dest.counter.requests if m == "POST" and f"{ns}/two" in p]
    assert len(mounts) == 3
    with dest.client() as http:
        assert remote_manifest(http, f"{ns}/two", "v1").content == image.body

    # A blob already in the destination repository is skipped after a HEAD.
    push_image(source.http, f"{ns}/one", "v2", layers=0)
    rerun = source.wait(source.store.enqueue(first.id, "manual").id)
    assert rerun.state == SUCCEEDED, rerun
    assert (rerun.images, rerun.manifests, rerun.blobs_copied) == (2, 1, 1)
