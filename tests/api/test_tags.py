"""Content discovery: listing tags (end-8a, end-8b)."""

from __future__ import annotations

import httpx

from .oci import (
    OCI_MANIFEST,
    Pushed,
    assert_error,
    describe,
    encode,
    expect,
    image_manifest,
    link_next,
    make_config,
    manifest_path,
    push,
    put_manifest,
    tags_path,
    unique,
    upload_blob,
)


def _tag_all(client: httpx.Client, repo: str, tags: list[str]) -> Pushed:
    """Push one small manifest and point every tag at it (by-tag pushes)."""
    config = make_config()
    upload_blob(client, repo, config)
    pushed = Pushed(encode(image_manifest(config, [])), OCI_MANIFEST)
    for tag in tags:
        push(client, repo, pushed, tag)
    return pushed


def _list(client: httpx.Client, repo: str, **params: str | int) -> httpx.Response:
    return expect(client.get(tags_path(repo), params=params or None), 200)


def _tags(resp: httpx.Response) -> list[str]:
    body = resp.json()
    return body.get("tags") or []


TAGS = ["v1", "alpha", "v10", "beta", "2024", "v2", "latest"]


def test_list_tags_returns_name_and_sorted_tags(client: httpx.Client) -> None:
    repo = unique("tags")
    _tag_all(client, repo, TAGS)
    resp = _list(client, repo)
    body = resp.json()
    assert body["name"] == repo, describe(resp)
    assert body["tags"] == sorted(TAGS), describe(resp)


def test_list_tags_content_type_is_json(client: httpx.Client) -> None:
    repo = unique("tags")
    _tag_all(client, repo, ["a"])
    resp = _list(client, repo)
    assert resp.headers.get("content-type", "").startswith("application/json"), describe(resp)


def test_list_tags_mixed_case_is_lexical_or_asciibetical(client: httpx.Client) -> None:
    repo = unique("tags")
    tags = ["B", "a", "C", "d", "A_1", "a-1", "a.1"]
    _tag_all(client, repo, tags)
    got = _tags(_list(client, repo))
    assert sorted(got) == sorted(tags)
    assert got in (sorted(tags), sorted(tags, key=str.lower)), got


def test_list_tags_nested_repository(client: httpx.Client) -> None:
    repo = f"{unique('tags')}/x/y"
    _tag_all(client, repo, ["one", "two"])
    resp = _list(client, repo)
    assert resp.json()["name"] == repo
    assert _tags(resp) == ["one", "two"]


def test_list_tags_unknown_repository_is_404_name_unknown(client: httpx.Client) -> None:
    assert_error(client.get(tags_path(unique("tags-none"))), 404, "NAME_UNKNOWN")


def test_list_tags_repository_without_tags_is_empty(client: httpx.Client) -> None:
    repo = unique("tags")
    config = make_config()
    upload_blob(client, repo, config)
    push(client, repo, Pushed(encode(image_manifest(config, [])), OCI_MANIFEST))  # by digest
    resp = client.get(tags_path(repo))
    expect(resp, 200)
    assert _tags(resp) == [], describe(resp)


def test_list_tags_n_returns_first_n(client: httpx.Client) -> None:
    repo = unique("tags")
    _tag_all(client, repo, TAGS)
    resp = _list(client, repo, n=3)
    assert resp.json()["tags"] == sorted(TAGS)[:3], describe(resp)


def test_list_tags_n_with_more_has_link_next(client: httpx.Client) -> None:
    repo = unique("tags")
    _tag_all(client, repo, TAGS)
    resp = _list(client, repo, n=3)
    nxt = link_next(resp)
    assert nxt, describe(resp)
    assert f"/v2/{repo}/tags/list" in nxt, describe(resp)


def test_list_tags_follow_links_yields_every_tag_once(client: httpx.Client) -> None:
    repo = unique("tags")
    _tag_all(client, repo, TAGS)
    seen: list[str] = []
    url: str | None = f"{tags_path(repo)}?n=2"
    while url:
        resp = expect(client.get(url), 200)
        page = _tags(resp)
        assert len(page) <= 2, describe(resp)
        seen.extend(page)
        url = link_next(resp)
        assert len(seen) <= len(TAGS), describe(resp)
    assert seen == sorted(TAGS)


def test_list_tags_n_zero_is_empty_without_link(client: httpx.Client) -> None:
    repo = unique("tags")
    _tag_all(client, repo, TAGS)
    resp = _list(client, repo, n=0)
    assert _tags(resp) == [], describe(resp)
    assert "link" not in resp.headers, describe(resp)


def test_list_tags_n_larger_than_count_has_no_link(client: httpx.Client) -> None:
    repo = unique("tags")
    _tag_all(client, repo, TAGS)
    resp = _list(client, repo, n=100)
    assert resp.json()["tags"] == sorted(TAGS), describe(resp)
    assert link_next(resp) is None, describe(resp)


def test_list_tags_n_equal_to_count(client: httpx.Client) -> None:
    repo = unique("tags")
    _tag_all(client, repo, TAGS)
    resp = _list(client, repo, n=len(TAGS))
    assert resp.json()["tags"] == sorted(TAGS), describe(resp)


def test_list_tags_last_without_n(client: httpx.Client) -> None:
    repo = unique("tags")
    _tag_all(client, repo, TAGS)
    ordered = sorted(TAGS)
    resp = _list(client, repo, last=ordered[2])
    assert _tags(resp) == ordered[3:], describe(resp)


def test_list_tags_n_and_last(client: httpx.Client) -> None:
    repo = unique("tags")
    _tag_all(client, repo, TAGS)
    ordered = sorted(TAGS)
    resp = _list(client, repo, n=2, last=ordered[1])
    assert resp.json()["tags"] == ordered[2:4], describe(resp)


def test_list_tags_last_is_exclusive_and_final(client: httpx.Client) -> None:
    repo = unique("tags")
    _tag_all(client, repo, TAGS)
    resp = _list(client, repo, n=5, last=sorted(TAGS)[-1])
    assert _tags(resp) == [], describe(resp)
    assert link_next(resp) is None, describe(resp)


def test_list_tags_last_not_an_existing_tag(client: httpx.Client) -> None:
    repo = unique("tags")
    _tag_all(client, repo, ["a", "c", "e"])
    resp = _list(client, repo, last="b")
    assert _tags(resp) == ["c", "e"], describe(resp)


def test_tag_moved_appears_once(client: httpx.Client) -> None:
    repo = unique("tags")
    _tag_all(client, repo, ["v1", "latest"])
    _tag_all(client, repo, ["latest"])
    assert _tags(_list(client, repo)) == ["latest", "v1"]


def test_tags_from_push_by_digest_with_tag_params_are_listed(client: httpx.Client) -> None:
    repo = unique("tags")
    config = make_config()
    upload_blob(client, repo, config)
    pushed = Pushed(encode(image_manifest(config, [])), OCI_MANIFEST)
    resp = put_manifest(client, repo, pushed.digest, pushed.body, OCI_MANIFEST,
                        params=[("tag", "x"), ("tag", "y")])
    expect(resp, 201)
    assert _tags(_list(client, repo)) == ["x", "y"]


def test_deleted_tag_is_not_listed(client: httpx.Client) -> None:
    repo = unique("tags")
    _tag_all(client, repo, ["keep", "drop"])
    expect(client.delete(manifest_path(repo, "drop")), 202)
    assert _tags(_list(client, repo)) == ["keep"]
