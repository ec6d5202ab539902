"""`cargohold keys`, `signatures`, `gates` and `promote` over real stores."""

from __future__ import annotations

import json
from pathlib import Path

from tests.scan.test_service import app_layers, cargohold, push_image

from cargohold.core.registry import Registry
from cargohold.stores import Stores

from .signer import KeyPair, sign, signature_tag
from .test_cosign import store_signature


def test_keys_gates_and_a_refused_then_passed_promotion(
    registry: Registry, stores: Stores, data_dir: Path, tmp_path: Path
):
    image = push_image(registry, "team/app", "1.4", app_layers()[:1])
    key = KeyPair.ecdsa()
    store_signature(registry, "team/app", sign(key, image), signature_tag(image))
    stores.close()
    pub = tmp_path / "cosign.pub"
    pub.write_text(key.public_pem)

    assert "trusts no keys" in cargohold(data_dir, "keys", "list", "prod").stdout
    unverified = cargohold(
        data_dir, "signatures", "verify", "team/app:1.4", "--keys-of", "prod", code=1
    )
    assert "NOT verified" in unverified.stdout
    cargohold(data_dir, "keys", "add", "prod", "release", "--file", str(pub))
    assert (
        "already trusts"
        in cargohold(data_dir, "keys", "add", "prod", "release", "--file", str(pub), code=1).stderr
    )
    garbage = tmp_path / "garbage.pub"
    garbage.write_text("nope")
    assert (
        "not a PEM public key"
        in cargohold(data_dir, "keys", "add", "prod", "x", "--file", str(garbage), code=2).stderr
    )
    [listed] = json.loads(cargohold(data_dir, "keys", "list", "prod", "--json").stdout)
    assert listed["name"] == "release" and listed["fingerprint"].startswith("sha256:")
    verified = cargohold(data_dir, "signatures", "verify", "team/app:1.4", "--keys-of", "prod")
    assert "verified" in verified.stdout and "release" in verified.stdout

    cargohold(data_dir, "gates", "set", "prod", "--require-signature", "--require-immutable")
    shown = json.loads(cargohold(data_dir, "gates", "show", "prod", "--json").stdout)
    assert shown == {"max_severity": None, "require_signature": True, "require_immutable": True}
    assert (
        "--max-severity"
        in cargohold(data_dir, "gates", "set", "prod", "--max-severity", "awful", code=2).stderr
    )

    refused = cargohold(data_dir, "promote", "team/app:1.4", "--to", "prod/app", code=1)
    assert "immutable: no immutable-tag rule protects prod/app:1.4" in refused.stderr
    assert "signature" not in refused.stderr.split("refused by the gates")[1].split(":")[0]
    cargohold(data_dir, "immutable", "add", "prod", "1.*")
    promoted = cargohold(data_dir, "promote", "team/app:1.4", "--to", "prod/app")
    assert "gate signature: passed" in promoted.stdout
    assert f"promoted team/app:1.4 ({image}) to prod/app:1.4" in promoted.stdout
    resolved = cargohold(data_dir, "tag", "resolve", "prod/app:1.4").stdout
    assert image in resolved
    renamed = json.loads(
        cargohold(
            data_dir, "promote", f"team/app@{image}", "--to", "prod/app:1.4-final", "--json"
        ).stdout
    )
    assert renamed["tag"] == "1.4-final" and renamed["digest"] == image
    assert (
        "a target tag"
        in cargohold(data_dir, "promote", f"team/app@{image}", "--to", "prod/app", code=2).stderr
    )

    audit = cargohold(data_dir, "audit", "--json").stdout
    actions = [event["action"] for event in json.loads(audit)]
    assert {"key_add", "gates_set", "promote", "promote_refused"} <= set(actions)

    cargohold(data_dir, "gates", "remove", "prod")
    assert "no promotion gates" in cargohold(data_dir, "gates", "show", "prod").stdout
    cargohold(data_dir, "keys", "remove", "prod", "release")
    assert "no key named" in cargohold(data_dir, "keys", "remove", "prod", "release", code=1).stderr
