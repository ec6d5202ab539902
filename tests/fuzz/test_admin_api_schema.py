"""Schemathesis against the admin API's own OpenAPI document, on a live server.

Every operation gets schema-valid (positive) and schema-violating (negative) requests as
an admin. The server must never answer 5xx, and its answers must match the document:
documented status codes, content types and response schemas.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from tests.conftest import LiveRegistry

from .servers import ADMIN, PASSWORD, admin_server, derandomized, scale

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# These send a request to a URL the fuzzer chose and wait for it: no traffic off loopback.
REACHES_OUT = {
    ("POST", "/v1/namespaces/{ns}/webhooks/{webhook_id}/test"),
    ("POST", "/v1/namespaces/{ns}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"),
}
EXAMPLES_PER_OPERATION = 5


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveRegistry]:
    data_dir: Path = tmp_path_factory.mktemp(f"schemathesis-{request.param}") / "data"
    with admin_server(data_dir, request.param) as server:
        yield server


def _auth_header() -> dict[str, str]:
    request = httpx.Request("GET", "http://registry")
    flow = httpx.BasicAuth(ADMIN, PASSWORD).auth_flow(request)
    return {"Authorization": next(flow).headers["Authorization"]}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_admin_api_answers_every_generated_request_by_its_schema(
    api_server: LiveRegistry, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{api_server.url}/api/openapi.json")
    base_url = f"{api_server.url}/api"
    headers = _auth_header()
    failures: list[str] = []
    cases = operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in REACHES_OUT:
            continue
        operations += 1

        @settings(
            max_examples=EXAMPLES_PER_OPERATION * scale(),
            deadline=None,
            database=None,
            derandomize=derandomized(),
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def exercise(case: schemathesis.Case) -> None:
            nonlocal cases
            cases += 1
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

        try:
            exercise()
        except (AssertionError, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup
            failures.append(f"{operation.method.upper()} {operation.path}:\n{exc}")
    print(f"schemathesis {mode.value}: {cases} requests over {operations} operations")
    assert operations > 50  # the document was read whole
    assert cases >= operations
    assert not failures, "\n\n".join(failures)
