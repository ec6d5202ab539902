"""`cargohold keys`, `signatures`, `gates` and `promote`: what a namespace trusts and
requires, and promotion of images between namespaces (environments).

Changes are recorded in the audit log as `cli:<OS user>`; promotions also in the tag
history (via "promote"). Exit status: 0 on success, 1 when the registry refuses (a gate
fails, no such image or key), 2 for invalid input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cargohold.cli_common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    cli_actor,
    command_group,
    fail,
    fail_with,
    load,
    opened_stores,
    record_change,
)
from cargohold.errors import RegistryError

keys_app = command_group(
    help="Public keys a namespace trusts for cosign signatures (`cosign generate-key-pair` "
    "writes cosign.pub): for its signature pull policy and for promotions into it; and "
    "`keys rotate`, a new signing key for the registry's tokens."
)
signatures_app = command_group(
    help="Cosign signatures of stored images: verify them, and require them on pull."
)
gates_app = command_group(
    help="Promotion gates: what an image must satisfy to be promoted into a namespace "
    "(`cargohold promote`)."
)

NamespaceArgument = Annotated[str, typer.Argument(help="The namespace (prod), no '/'.")]
SEVERITY_CHOICES = ("critical", "high", "medium", "low")


@keys_app.command("rotate")
def keys_rotate(data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """Add a new token signing key; it signs new tokens, old keys still verify until
    removed. (Not a trusted cosign key: those are `keys add`.)"""
    from cargohold.auth.tokens import create_key

    settings = load(config, data_dir=data_dir)
    kid = create_key(settings.keys_dir)
    typer.echo(f"new signing key {kid}; remove old keys after {settings.token_ttl}s")


def register_trust_commands(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.add_typer(signatures_app, name="signatures")
    app.add_typer(gates_app, name="gates")
    app.command("promote")(promote_command)


def _namespace(text: str) -> str:
    from cargohold.core.versioning import TagService

    try:
        return TagService._namespace(text)
    except RegistryError as exc:
        fail_with(exc)


# -- keys
@keys_app.command("add")
def keys_add(
    namespace: NamespaceArgument,
    name: Annotated[str, typer.Argument(help="A name for the key (e.g. release-2026).")],
    key_file: Annotated[
        Path, typer.Option("--file", "-f", help="The PEM public key (cosign.pub).", exists=True)
    ],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Trust a public key in a namespace."""
    from cargohold.signatures.cosign import KeyInvalid
    from cargohold.signatures.store import SignatureStore

    namespace = _namespace(namespace)
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").isalnum():
        fail("a key name is 1-64 letters, digits, '-' or '_'", 2)
    with opened_stores(config, data_dir) as (_settings, stores):
        try:
            record = SignatureStore(stores.engine).add_key(
                namespace, name, key_file.read_text(), cli_actor()
            )
        except KeyInvalid as exc:
            fail(f"{key_file}: {exc}", 2)
        except RegistryError as exc:
            fail_with(exc)
        record_change(stores.engine, "key_add", namespace, key=name, fingerprint=record.fingerprint)
    typer.echo(f"namespace {namespace} trusts key {name} ({record.fingerprint})")


@keys_app.command("list")
def keys_list(
    namespace: NamespaceArgument,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """The keys a namespace trusts."""
    from cargohold.signatures.store import SignatureStore

    namespace = _namespace(namespace)
    with opened_stores(config, data_dir) as (_settings, stores):
        records = SignatureStore(stores.engine).keys(namespace)
    rows = [
        {
            "name": r.name,
            "fingerprint": r.fingerprint,
            "created_at": r.created_at.isoformat(),
            "created_by": r.created_by,
            "public_key": r.public_key,
        }
        for r in records
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"namespace {namespace} trusts no keys: add one with `cargohold keys add`")
        return
    table = Table("name", "fingerprint", "added", "by")
    for row in rows:
        table.add_row(row["name"], row["fingerprint"], row["created_at"][:19], row["created_by"])
    Console().print(table)


@keys_app.command("remove")
def keys_remove(
    namespace: NamespaceArgument,
    name: Annotated[str, typer.Argument(help="The key's name.")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Stop trusting a key."""
    from cargohold.signatures.store import SignatureStore

    namespace = _namespace(namespace)
    with opened_stores(config, data_dir) as (_settings, stores):
        if not SignatureStore(stores.engine).remove_key(namespace, name):
            fail(f"namespace {namespace} has no key named {name!r} (see `cargohold keys list`)")
        record_change(stores.engine, "key_remove", namespace, key=name)
    typer.echo(f"namespace {namespace} no longer trusts key {name}")


# -- signatures
@signatures_app.command("verify")
def signatures_verify(
    image: Annotated[str, typer.Argument(help="REPOSITORY:TAG or REPOSITORY@DIGEST.")],
    keys_of: Annotated[
        str | None,
        typer.Option("--keys-of", help="Use this namespace's trusted keys (default: the image's)."),
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Check an image's cosign signatures against a namespace's trusted keys (exit status
    1 when none verifies)."""
    from cargohold.cli_scan import _reference
    from cargohold.core.registry import Registry
    from cargohold.core.versioning import namespace_of
    from cargohold.signatures.cosign import CosignVerifier
    from cargohold.signatures.store import SignatureStore

    repository, reference = _reference(image)
    namespace = _namespace(keys_of) if keys_of else namespace_of(repository)
    with opened_stores(config, data_dir) as (settings, stores):
        registry = Registry(stores.blobs, stores.meta, settings.max_manifest_size)
        try:
            digest = registry.manifests.get(repository, reference).digest
        except RegistryError as exc:
            fail_with(exc)
        keys = [k.trusted() for k in SignatureStore(stores.engine).keys(namespace)]
        verdict = CosignVerifier(registry).verify(repository, digest, keys)
    if as_json:
        typer.echo(json.dumps({"digest": digest, "namespace": namespace, **vars(verdict)}))
    else:
        state = "verified" if verdict.verified else "NOT verified"
        typer.echo(f"{repository}@{digest}: {state} with the keys of {namespace}")
        typer.echo(f"  {verdict.explain()}")
    if not verdict.verified:
        raise typer.Exit(1)


@signatures_app.command("require")
def signatures_require(
    namespace: NamespaceArgument,
    off: Annotated[bool, typer.Option("--off", help="Stop requiring signatures on pull.")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Serve the namespace's images only when signed by one of its trusted keys.

    Pulls of unsigned images get 403 DENIED naming what is missing; signatures, SBOMs
    and other artifacts are always served, and so are the platforms of a signed index.
    Servers apply a change within seconds.
    """
    from cargohold.signatures.store import SignatureStore

    namespace = _namespace(namespace)
    with opened_stores(config, data_dir) as (_settings, stores):
        store = SignatureStore(stores.engine)
        if not off and not store.keys(namespace):
            fail(
                f"namespace {namespace} trusts no keys yet: every pull would be refused. "
                "Add one first with `cargohold keys add`",
                1,
            )
        store.require_signatures(namespace, not off, cli_actor())
        record_change(stores.engine, "signature_policy", namespace, required=not off)
    verb = "no longer requires" if off else "requires"
    typer.echo(f"namespace {namespace} {verb} signed images on pull")


# -- gates
@gates_app.command("set")
def gates_set(
    namespace: NamespaceArgument,
    max_severity: Annotated[
        str | None,
        typer.Option(
            help="Refuse images with findings at or above this severity (critical, high, "
            "medium, low), and images not scanned yet."
        ),
    ] = None,
    require_signature: Annotated[
        bool,
        typer.Option(help="Require a cosign signature by one of the namespace's trusted keys."),
    ] = False,
    require_immutable: Annotated[
        bool, typer.Option(help="Require an immutable-tag rule protecting the target tag.")
    ] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Set the namespace's promotion gates (replacing the ones it had)."""
    from cargohold.signatures.store import SignatureStore

    namespace = _namespace(namespace)
    if max_severity is not None and max_severity.lower() not in SEVERITY_CHOICES:
        fail(f"--max-severity must be one of {', '.join(SEVERITY_CHOICES)}", 2)
    with opened_stores(config, data_dir) as (_settings, stores):
        gates = SignatureStore(stores.engine).set_gates(
            namespace,
            max_severity.lower() if max_severity else None,
            require_signature,
            require_immutable,
            cli_actor(),
        )
        record_change(stores.engine, "gates_set", namespace, **_gates_dict(gates))
    typer.echo(f"promotion gates of {namespace}: {_describe(_gates_dict(gates))}")


@gates_app.command("show")
def gates_show(
    namespace: NamespaceArgument,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """The namespace's promotion gates."""
    from cargohold.signatures.store import SignatureStore

    namespace = _namespace(namespace)
    with opened_stores(config, data_dir) as (_settings, stores):
        gates = SignatureStore(stores.engine).gates(namespace)
    data = None if gates is None else _gates_dict(gates)
    if as_json:
        typer.echo(json.dumps(data))
    elif data is None:
        typer.echo(f"namespace {namespace} has no promotion gates: every promotion passes")
    else:
        typer.echo(f"promotion gates of {namespace}: {_describe(data)}")


@gates_app.command("remove")
def gates_remove(
    namespace: NamespaceArgument,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Remove the namespace's promotion gates."""
    from cargohold.signatures.store import SignatureStore

    namespace = _namespace(namespace)
    with opened_stores(config, data_dir) as (_settings, stores):
        if not SignatureStore(stores.engine).remove_gates(namespace):
            fail(f"namespace {namespace} has no promotion gates")
        record_change(stores.engine, "gates_remove", namespace)
    typer.echo(f"namespace {namespace} has no promotion gates now")


def _gates_dict(gates: Any) -> dict[str, Any]:
    return {
        "max_severity": gates.max_severity,
        "require_signature": gates.require_signature,
        "require_immutable": gates.require_immutable,
    }


def _describe(data: dict[str, Any]) -> str:
    parts = []
    if data["max_severity"]:
        parts.append(f"scanned, nothing at or above {data['max_severity']}")
    if data["require_signature"]:
        parts.append("signed by a trusted key")
    if data["require_immutable"]:
        parts.append("target tag immutable")
    return "; ".join(parts) or "none (every promotion passes)"


# -- promote
def promote_command(
    image: Annotated[str, typer.Argument(help="What to promote: REPOSITORY:TAG or @DIGEST.")],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="The target REPOSITORY (the tag stays the same) or REPOSITORY:TAG.",
            show_default=False,
        ),
    ],
    as_json: JsonOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Promote an image to another repository, e.g. a production namespace.

    The manifest, every platform of an index, its signatures and SBOMs appear in the
    target without copying blobs, if the target namespace's gates pass (see `cargohold
    gates`); a refusal names each failed gate. Recorded in the tag history (via promote)
    and the audit log.
    """
    from cargohold.cli_scan import _reference
    from cargohold.core.registry import Registry
    from cargohold.promotion import PromotionService
    from cargohold.reference import parse_ref

    source, reference = _reference(image)
    try:
        target_ref = parse_ref(to)
    except RegistryError as exc:
        fail_with(exc)
    if target_ref.digest:
        fail("--to names a repository or REPOSITORY:TAG, not a digest", 2)
    target_tag = target_ref.tag
    with opened_stores(config, data_dir) as (settings, stores):
        registry = Registry(stores.blobs, stores.meta, settings.max_manifest_size)
        try:
            result = PromotionService(registry, stores.engine).promote(
                source, reference, target_ref.repository, target_tag, cli_actor()
            )
        except RegistryError as exc:
            record_change(
                stores.engine,
                "promote_refused",
                target_ref.repository,
                source=image,
                reason=exc.message[:500],
            )
            fail_with(exc)
        record_change(
            stores.engine,
            "promote",
            f"{result.target}:{result.tag}",
            source=result.source,
            digest=result.digest,
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    for gate in result.gates:
        typer.echo(f"  gate {gate.gate}: passed ({gate.message})")
    note = "" if result.changed else " (it named that image already)"
    typer.echo(
        f"promoted {result.source} ({result.digest}) to {result.target}:{result.tag}{note}; "
        f"{result.manifests_linked} manifest(s) linked, no blobs copied"
    )
