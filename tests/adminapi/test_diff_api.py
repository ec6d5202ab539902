"""GET /v1/repositories/{name}/diff: the image diff of `cargohold diff`, with pull access."""

from __future__ import annotations

import json

import httpx
from tests.api.oci import OCI_LAYER, Pushed, digest_of, image_manifest, push, upload_blob
from tests.scan.test_diff import (
    ADVISORIES,
    BASE,
    NEW_DPKG,
    NEW_PYTHON,
    OLD_DPKG,
    OLD_PYTHON,
    check_diff,
)

from cargohold.vulndb.osv import parse_record
from cargohold.vulndb.store import AdvisoryStore

from .conftest import Api, expect
from .test_tags_api import crew, v2


def _push(http: httpx.Client, repo: str, tag: str, layers: list[bytes]) -> str:
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}})
    for blob in (config.encode(), *layers):
        upload_blob(http, repo, blob)
    manifest = image_manifest(config.encode(), layers, layer_type=OCI_LAYER)
    body = json.dumps(manifest).encode()
    pushed = Pushed(body, manifest["mediaType"], {digest_of(b): b for b in layers})
    return push(http, repo, pushed, tag).digest


def test_diff_api_needs_pull_and_answers_the_diff(api: Api) -> None:
    AdvisoryStore(api.store.engine).save([(parse_record(r), json.dumps(r)) for r in ADVISORIES])
    team = crew(api)
    repo = f"{team.org}/app"
    with v2(api, team.writer) as http:
        old = _push(http, repo, "1.0", [BASE, OLD_DPKG, OLD_PYTHON])
        new = _push(http, repo, "1.1", [BASE, NEW_DPKG, NEW_PYTHON])
    path = f"/v1/repositories/{repo}/diff"
    params = {"from": "1.0", "to": "1.1"}

    data = expect(api.call("GET", path, team.reader, params=params), 200)
    check_diff(data, old, new)
    by_digest = expect(api.call("GET", path, team.reader, params={"from": old, "to": "1.1"}), 200)
    assert by_digest["layers"] == data["layers"]

    expect(api.call("GET", path, team.outsider, params=params), 403, "DENIED")
    expect(api.call("GET", path, team.reader, params={"from": "1.0", "to": "9.9"}), 404)
    expect(api.call("GET", path, team.reader, params={"from": "1.0"}), 400, "INVALID_REQUEST")
