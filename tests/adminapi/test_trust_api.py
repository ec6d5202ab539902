"""Trusted keys, the signature policy, promotion gates and promotions over the admin API:
namespace admins change them, anyone who sees the namespace reads them; a promotion needs
pull on the source and push on the target, and a failed gate is 403 with every verdict."""

from __future__ import annotations

from tests.api.oci import push_image
from tests.signatures.signer import KeyPair

from .conftest import Api, expect
from .test_retention_api import audit_events
from .test_tags_api import crew, v2


def test_keys_and_the_signature_policy_are_managed_by_namespace_admins(api: Api) -> None:
    team = crew(api)
    ns = team.org
    key = KeyPair.ecdsa().public_pem
    path = f"/v1/namespaces/{ns}/keys"
    expect(api.call("POST", path, team.writer, json={"name": "ci", "public_key": key}), 403)
    expect(api.call("PUT", f"/v1/namespaces/{ns}/signature-policy", team.admin), 409, "CONFLICT")
    added = expect(api.call("POST", path, team.admin, json={"name": "ci", "public_key": key}), 201)
    assert added["fingerprint"].startswith("sha256:") and added["created_by"] == team.admin[0]
    expect(api.call("POST", path, team.admin, json={"name": "ci", "public_key": key}), 409)
    bad = {"name": "bad", "public_key": "not a key"}
    expect(api.call("POST", path, team.admin, json=bad), 400, "INVALID_REQUEST")
    listed = expect(api.call("GET", path, team.reader), 200)
    assert [k["name"] for k in listed["keys"]] == ["ci"]
    expect(api.call("GET", path, team.outsider), 404)

    policy = f"/v1/namespaces/{ns}/signature-policy"
    assert expect(api.call("GET", policy, team.reader), 200)["required"] is False
    expect(api.call("PUT", policy, team.writer), 403)
    assert expect(api.call("PUT", policy, team.admin), 200)["required"] is True
    assert expect(api.call("GET", policy, team.reader), 200)["required"] is True
    expect(api.call("DELETE", policy, team.admin), 204)
    assert expect(api.call("GET", policy, team.reader), 200)["required"] is False

    expect(api.call("DELETE", f"{path}/ci", team.writer), 403)
    expect(api.call("DELETE", f"{path}/ci", team.admin), 204)
    expect(api.call("DELETE", f"{path}/ci", team.admin), 404)


def test_a_promotion_passes_the_gates_or_is_refused_with_every_verdict(api: Api) -> None:
    dev, prod = crew(api), crew(api)
    api.grant(prod.org, "writer", dev.writer[0])  # the dev writer may push to prod
    with v2(api, dev.writer) as http:
        image = push_image(http, f"{dev.org}/app", "1.4")
    gates = f"/v1/namespaces/{prod.org}/promotion-gates"
    expect(api.call("GET", gates, prod.reader), 404)
    body = {"max_severity": None, "require_signature": False, "require_immutable": True}
    expect(api.call("PUT", gates, prod.writer, json=body), 403)
    saved = expect(api.call("PUT", gates, prod.admin, json=body), 200)
    assert saved["require_immutable"] is True and saved["updated_by"] == prod.admin[0]
    expect(api.call("PUT", gates, prod.admin, json={**body, "max_severity": "bad"}), 400)

    request = {"source": f"{dev.org}/app:1.4", "target": f"{prod.org}/app"}
    expect(api.call("POST", "/v1/promotions", prod.reader, json=request), 403, "DENIED")
    expect(api.call("POST", "/v1/promotions", dev.reader, json=request), 403, "DENIED")
    refused = expect(api.call("POST", "/v1/promotions", dev.writer, json=request), 403, "DENIED")
    error = refused["errors"][0]
    assert "no immutable-tag rule protects" in error["message"]
    assert error["detail"]["gates"] == [
        {"gate": "immutable", "passed": False, "message": error["detail"]["gates"][0]["message"]}
    ]
    rules = f"/v1/namespaces/{prod.org}/immutable-tag-rules"
    expect(api.call("POST", rules, prod.admin, json={"pattern": "1.*"}), 201)

    promoted = expect(api.call("POST", "/v1/promotions", dev.writer, json=request), 201)
    assert promoted["digest"] == image.digest
    assert (promoted["target"], promoted["tag"], promoted["changed"]) == (
        f"{prod.org}/app",
        "1.4",
        True,
    )
    assert promoted["gates"][0]["passed"] is True
    history = expect(
        api.call("GET", f"/v1/repositories/{prod.org}/app/tags/1.4/history", prod.reader), 200
    )
    assert history["events"][0]["via"] == "promote"
    with v2(api, prod.reader) as http:
        pulled = http.get(f"/v2/{prod.org}/app/manifests/1.4", headers={"Accept": image.media_type})
        assert pulled.status_code == 200 and pulled.content == image.body
    promoted_events = audit_events(api, api.admin, f"{prod.org}/app:1.4", "promote")
    assert [e["actor"] for e in promoted_events] == [dev.writer[0]]

    expect(api.call("DELETE", gates, prod.admin), 204)
    bad = {"source": f"{dev.org}/app@sha256:{'0' * 64}", "target": f"{prod.org}/app"}
    expect(api.call("POST", "/v1/promotions", dev.writer, json=bad), 400)
    expect(api.call("POST", "/v1/promotions", dev.writer, json={**request, "target": "x@y"}), 400)
