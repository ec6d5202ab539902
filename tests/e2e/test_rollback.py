"""Versioning end to end: skopeo pushes, `cargohold tag ...` / `cargohold immutable ...`
change the tags, skopeo sees the result.

The CLI runs as a subprocess on the live server's own stores (its data dir and the
environment it was started with), so on the scale-out server it writes to the same
PostgreSQL and must invalidate the same Redis cache the server reads: every check after a
CLI change follows a read through the server that had cached the old answer.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from .oci_layout import Layout, build_image_layout, compare_layouts, read_layout
from .skopeo import Result, Skopeo

PUSH = "--dest-tls-verify=false"
PULL = "--src-tls-verify=false"
NO_TLS = "--tls-verify=false"
ME = f"cli:{getpass.getuser()}"


def unique_namespace() -> str:
    """A namespace of its own: the server is shared by the session, rules are per namespace."""
    return f"rb-{uuid.uuid4().hex[:10]}"


def cargohold(registry, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    """`python -m cargohold ARGS` on the live server's stores."""
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", *args, "--data-dir", str(registry.data_dir)],
        env={**os.environ, **registry.extra_env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, (args, result.returncode, result.stdout, result.stderr)
    return result


def cli_json(registry, *args: str) -> Any:  # type: ignore[no-untyped-def]
    return json.loads(cargohold(registry, *args, "--json").stdout)


def images(tmp_path: Path, namespace: str, count: int) -> list[Layout]:
    """`count` different two-layer images (every blob differs), as OCI layouts tagged prod."""
    return [
        build_image_layout(
            tmp_path / f"v{i}", "prod", seed=f"{namespace}-v{i}", layers=2, payload_bytes=64 << 10
        )
        for i in range(1, count + 1)
    ]


def push(skopeo: Skopeo, layout: Layout, ref: str, check: bool = True) -> tuple[Result, str]:
    """skopeo copy of the layout to docker://REF; the result and the digest skopeo wrote."""
    digest_file = layout.path.parent / f"{layout.path.name}.digest"
    digest_file.unlink(missing_ok=True)
    result = skopeo.copy(layout.reference, ref, PUSH, "--digestfile", digest_file, check=check)
    return result, digest_file.read_text().strip() if digest_file.exists() else ""


def inspected(skopeo: Skopeo, ref: str) -> str:
    """The digest `skopeo inspect` reports (a GET of the manifest through the server)."""
    return str(skopeo.inspect(ref, NO_TLS).json()["Digest"])


def test_history_and_rollback_pull_the_first_push_byte_for_byte(
    skopeo: Skopeo, registry, tmp_path: Path
) -> None:
    namespace = unique_namespace()
    repo = f"{namespace}/app"
    ref = f"docker://{registry.host}/{repo}:prod"
    layouts = images(tmp_path, namespace, 3)
    digests = []
    for layout in layouts:
        _, digest = push(skopeo, layout, ref)
        assert digest == layout.digest
        assert inspected(skopeo, ref) == digest  # also caches tag -> digest (scale-out)
        digests.append(digest)
    one, two, three = digests

    history = cli_json(registry, "tag", "history", f"{repo}:prod")
    assert [(e["action"], e["old_digest"], e["new_digest"], e["via"]) for e in history] == [
        ("moved", two, three, "push"),
        ("moved", one, two, "push"),
        ("created", None, one, "push"),
    ]
    table = cargohold(registry, "tag", "history", f"{repo}:prod").stdout
    for digest in digests:
        assert digest[:19] in table
    assert cargohold(registry, "tag", "resolve", f"{repo}:prod").stdout == f"{three}\n"

    # No --to: back to the version before the latest change.
    out = cargohold(registry, "tag", "rollback", f"{repo}:prod").stdout
    assert out.strip() == f"{repo}:prod now {two} (was {three})"
    assert inspected(skopeo, ref) == two

    # --to the first digest: skopeo inspects and pulls exactly the first push.
    out = cargohold(registry, "tag", "rollback", f"{repo}:prod", "--to", one).stdout
    assert out.strip() == f"{repo}:prod now {one} (was {two})"
    assert inspected(skopeo, ref) == one
    assert cargohold(registry, "tag", "resolve", f"{repo}:prod").stdout.strip() == one
    assert skopeo.inspect(ref, NO_TLS, "--raw").stdout == layouts[0].root.data
    out_dir = tmp_path / "pulled"
    skopeo.copy(ref, f"oci:{out_dir}:prod", PULL, "--preserve-digests")
    pulled = read_layout(out_dir, "prod")
    assert pulled.blobs[one] == layouts[0].root.data
    assert compare_layouts(layouts[0], pulled) == []  # manifest, config and layers

    # Rolling back again undoes that rollback: back to the second push.
    again = cli_json(registry, "tag", "rollback", f"{repo}:prod")
    assert (again["digest"], again["previous_digest"]) == (two, one)
    assert inspected(skopeo, ref) == two

    latest = cli_json(registry, "tag", "history", f"{repo}:prod", "--limit", "3")
    assert [(e["new_digest"], e["via"], e["actor"]) for e in latest] == [
        (two, "rollback", ME),
        (one, "rollback", ME),
        (two, "rollback", ME),
    ]


def test_rollback_restores_a_deleted_tag(skopeo: Skopeo, registry, tmp_path: Path) -> None:
    namespace = unique_namespace()
    repo = f"{namespace}/app"
    ref = f"docker://{registry.host}/{repo}:prod"
    first, second = images(tmp_path, namespace, 2)
    push(skopeo, first, ref)
    push(skopeo, second, ref)
    assert inspected(skopeo, ref) == second.digest

    # DELETE of the tag (not the manifest): rollback puts the tag back where it was.
    response = httpx.delete(f"{registry.url}/v2/{repo}/manifests/prod", timeout=30)
    assert response.status_code == 202, response.text
    gone = skopeo.inspect(ref, NO_TLS, check=False)
    assert gone.returncode != 0 and "manifest unknown" in gone.stderr.lower(), gone.describe()
    out = cargohold(registry, "tag", "rollback", f"{repo}:prod").stdout
    assert out.strip() == f"{repo}:prod now {second.digest} (the tag did not exist)"
    assert inspected(skopeo, ref) == second.digest

    # skopeo delete removes the manifest itself: that one cannot come back by a rollback,
    # but the tag can go back to the first push, which is still in the repository.
    skopeo.run("delete", NO_TLS, ref)
    assert skopeo.inspect(ref, NO_TLS, check=False).returncode != 0
    refused = cargohold(registry, "tag", "rollback", f"{repo}:prod", code=1)
    assert second.digest in refused.stderr and "push it again" in refused.stderr
    cargohold(registry, "tag", "rollback", f"{repo}:prod", "--to", first.digest)
    assert inspected(skopeo, ref) == first.digest
    actions = [
        (e["action"], e["via"]) for e in cli_json(registry, "tag", "history", f"{repo}:prod")
    ]
    assert actions[:4] == [
        ("created", "rollback"),
        ("deleted", "delete"),
        ("created", "rollback"),
        ("deleted", "delete"),
    ]


def test_immutable_rule_refuses_push_and_delete_until_removed(
    skopeo: Skopeo, registry, tmp_path: Path
) -> None:
    namespace = unique_namespace()
    repo = f"{namespace}/app"
    ref = f"docker://{registry.host}/{repo}:prod"
    first, second = images(tmp_path, namespace, 2)
    push(skopeo, first, ref)
    assert inspected(skopeo, ref) == first.digest

    rule = cli_json(registry, "immutable", "add", namespace, "prod")
    assert (rule["pattern"], rule["repository"], rule["created_by"]) == ("prod", None, ME)
    assert [r["id"] for r in cli_json(registry, "immutable", "list", namespace)] == [rule["id"]]

    refused, _ = push(skopeo, second, ref, check=False)
    assert refused.returncode != 0, refused.describe()
    assert f"immutable-tag rule {rule['id']}" in refused.stderr, refused.describe()
    deleted = skopeo.run("delete", NO_TLS, ref, check=False)
    assert deleted.returncode != 0, deleted.describe()
    assert f"immutable-tag rule {rule['id']}" in deleted.stderr, deleted.describe()
    assert inspected(skopeo, ref) == first.digest
    # Other tags are not protected.
    _, other = push(skopeo, second, f"docker://{registry.host}/{repo}:next")
    assert other == second.digest

    cargohold(registry, "immutable", "remove", namespace, str(rule["id"]))
    assert cli_json(registry, "immutable", "list", namespace) == []
    _, digest = push(skopeo, second, ref)
    assert digest == second.digest
    assert inspected(skopeo, ref) == second.digest
    resolved = cargohold(registry, "tag", "resolve", f"{repo}:prod").stdout.strip()
    assert resolved == inspected(skopeo, ref)

    audit = cli_json(registry, "audit", "--target", namespace, "--actor", ME)
    assert [a["action"] for a in audit] == ["immutable_remove", "immutable_add"]


def test_retag_into_another_repository_pulls_without_upload(
    skopeo: Skopeo, registry, tmp_path: Path
) -> None:
    namespace = unique_namespace()
    [layout] = images(tmp_path, namespace, 1)
    push(skopeo, layout, f"docker://{registry.host}/{namespace}/app:prod")
    other = f"docker://{registry.host}/{namespace}/other:v1.2.3"
    assert skopeo.inspect(other, NO_TLS, check=False).returncode != 0  # cache a miss, too

    cargohold(registry, "tag", "add", f"{namespace}/app:prod", f"{namespace}/other:v1.2.3")
    cargohold(registry, "tag", "add", f"{namespace}/app@{layout.digest}", "v1.2.3")
    assert inspected(skopeo, other) == layout.digest
    assert inspected(skopeo, f"docker://{registry.host}/{namespace}/app:v1.2.3") == layout.digest
    out_dir = tmp_path / "pulled"
    skopeo.copy(other, f"oci:{out_dir}:v1.2.3", PULL, "--preserve-digests")
    assert compare_layouts(layout, read_layout(out_dir, "v1.2.3")) == []
    [tag] = cli_json(registry, "tag", "list", f"{namespace}/other")
    assert (tag["tag"], tag["digest"], tag["size"]) == ("v1.2.3", layout.digest, layout.root.size)
