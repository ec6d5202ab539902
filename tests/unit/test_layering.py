"""The core and the stores know nothing of serving HTTP: only http/ and server.py import
a web framework or server. Talking to other systems over HTTP (httpx: upstream registries,
replication destinations, webhook receivers) is not serving it."""

from __future__ import annotations

import ast
from pathlib import Path

import cargohold

PACKAGE = Path(cargohold.__file__).parent
HTTP_LIBRARIES = {"starlette", "fastapi", "uvicorn", "h11", "httptools"}
ALLOWED = {PACKAGE / "server.py"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_the_http_layer_imports_http_libraries() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if (PACKAGE / "http") in path.parents or path in ALLOWED:
            continue
        leaked = imported_roots(path) & HTTP_LIBRARIES
        if leaked:
            offenders.append(f"{path.relative_to(PACKAGE)}: {sorted(leaked)}")
    assert offenders == []


def test_the_core_does_not_import_the_http_layer() -> None:
    for path in (PACKAGE / "core").rglob("*.py"):
        source = path.read_text()
        assert "cargohold.http" not in source, path
