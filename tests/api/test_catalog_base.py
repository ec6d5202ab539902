"""API base endpoint (end-1) and the repository catalog (/v2/_catalog)."""

from __future__ import annotations

import httpx

from .oci import describe, expect, link_next, push_image, unique


def test_base_endpoint_returns_200(client: httpx.Client) -> None:
    resp = client.get("/v2/")
    expect(resp, 200)


def test_base_endpoint_advertises_api_version(client: httpx.Client) -> None:
    resp = client.get("/v2/")
    expect(resp, 200)
    assert resp.headers.get("docker-distribution-api-version") == "registry/2.0", describe(resp)


def test_unknown_v2_route_is_404(client: httpx.Client) -> None:
    resp = client.get(f"/v2/{unique('nowhere')}/nothing-here")
    expect(resp, 404)


def _push_repos(client: httpx.Client, prefix: str, suffixes: list[str]) -> list[str]:
    names = [f"{prefix}-{s}" for s in suffixes]
    for name in names:
        push_image(client, name, "latest", layers=0)
    return names


def _walk_catalog(client: httpx.Client, first_url: str) -> list[str]:
    """Follow the Link rel="next" chain from first_url; return every repository seen."""
    seen: list[str] = []
    url: str | None = first_url
    pages = 0
    while url:
        resp = client.get(url)
        expect(resp, 200)
        page = resp.json()["repositories"]
        seen.extend(page)
        url = link_next(resp)
        pages += 1
        assert pages < 10_000, "catalog pagination does not terminate"
    return seen


def test_catalog_lists_repositories_sorted(client: httpx.Client) -> None:
    prefix = unique("catalog")
    names = _push_repos(client, prefix, ["c", "a", "b"])
    resp = client.get("/v2/_catalog")
    expect(resp, 200)
    assert resp.headers["content-type"].split(";")[0].strip() == "application/json", describe(resp)
    repos = resp.json()["repositories"]
    nxt = link_next(resp)
    if nxt:  # the registry MAY cap an unpaginated listing
        repos = [*repos, *_walk_catalog(client, nxt)]
    assert set(names) <= set(repos), describe(resp)
    assert repos == sorted(repos), describe(resp)
    assert len(repos) == len(set(repos)), describe(resp)


def test_catalog_includes_nested_repository_names(client: httpx.Client) -> None:
    name = f"{unique('catalog-ns')}/team/app"
    push_image(client, name, "v1", layers=0)
    repos = _walk_catalog(client, "/v2/_catalog?n=1000")
    assert name in repos


def test_catalog_pagination_with_n_and_last(client: httpx.Client) -> None:
    prefix = unique("catalog-page")
    names = sorted(_push_repos(client, prefix, ["a", "b", "c"]))
    # `prefix-` sorts right before our three names and after everything else.
    resp = client.get("/v2/_catalog", params={"n": 2, "last": f"{prefix}-"})
    expect(resp, 200)
    assert resp.json()["repositories"] == names[:2], describe(resp)
    assert link_next(resp), describe(resp)

    resp = client.get("/v2/_catalog", params={"n": 2, "last": names[1]})
    expect(resp, 200)
    assert resp.json()["repositories"][0] == names[2], describe(resp)


def test_catalog_link_header_points_to_next_page(client: httpx.Client) -> None:
    prefix = unique("catalog-link")
    names = sorted(_push_repos(client, prefix, ["a", "b", "c"]))
    resp = client.get("/v2/_catalog", params={"n": 2, "last": f"{prefix}-"})
    expect(resp, 200)
    nxt = link_next(resp)
    assert nxt, describe(resp)
    assert "/v2/_catalog" in nxt, describe(resp)
    resp = client.get(nxt)
    expect(resp, 200)
    page = resp.json()["repositories"]
    assert page, describe(resp)
    assert page[0] == names[2], describe(resp)


def test_catalog_full_walk_is_sorted_without_duplicates(client: httpx.Client) -> None:
    names = _push_repos(client, unique("catalog-walk"), ["x", "y"])
    seen = _walk_catalog(client, "/v2/_catalog?n=3")
    assert set(names) <= set(seen)
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen))


def test_catalog_n_limits_page_size(client: httpx.Client) -> None:
    _push_repos(client, unique("catalog-n"), ["a", "b"])
    resp = client.get("/v2/_catalog", params={"n": 1})
    expect(resp, 200)
    assert len(resp.json()["repositories"]) == 1, describe(resp)
    assert link_next(resp), describe(resp)
