"""The deployment examples parse, and every setting they use exists."""

from __future__ import annotations

from pathlib import Path

import yaml

from cargohold.config import Settings

ROOT = Path(__file__).parents[2]
AWS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def _check_names(names: set[str]) -> None:
    known = {f"CARGOHOLD_{name.upper()}" for name in Settings.model_fields} | AWS
    assert names <= known, f"unknown settings in the examples: {sorted(names - known)}"


def test_compose_example_uses_real_settings() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    env = compose["x-cargohold"]["environment"]
    _check_names(set(env))
    assert {"registry-1", "registry-2", "registry-3", "migrate"} <= set(compose["services"])
    assert compose["services"]["migrate"]["command"] == ["db", "upgrade"]


def test_kubernetes_example_uses_real_settings() -> None:
    documents = list(yaml.safe_load_all((ROOT / "deploy/kubernetes/cargohold.yaml").read_text()))
    kinds = {doc["kind"] for doc in documents}
    assert {"ConfigMap", "Secret", "Job", "Deployment", "Service"} <= kinds
    names: set[str] = set()
    for doc in documents:
        if doc["kind"] in ("ConfigMap", "Secret"):
            names |= set(doc.get("data") or {}) | set(doc.get("stringData") or {})
    _check_names({n for n in names if n.startswith(("CARGOHOLD_", "AWS_"))})
    deployment = next(doc for doc in documents if doc["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_dockerfile_runs_the_cli() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["cargohold"]' in dockerfile
    words = dockerfile.split()
    _check_names({w.split("=")[0] for w in words if w.startswith("CARGOHOLD_") and "=" in w})
