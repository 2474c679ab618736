"""A schemathesis fuzz pass over the JSON API and the OpenAI-compatible routes.

schemathesis reads the schema the server publishes (``/api/openapi.json``) and sends each
operation generated requests, valid and invalid (``positive`` and ``negative`` modes), to a
real uvicorn server on 127.0.0.1 over a small real index (hash embedder). No answer may be a
server error: invalid input is a 4xx through ``kenning.serve.errors``, never a 500.

Left out: ``POST /api/sync`` (a rescan per example is slow; syncs are tested in
``test_serve``). ``/v1/chat/completions`` and ``/api/ask`` are in: the default answerer is
extractive and fast.

The operations are listed from the schema snapshot (``tests/serve/snapshots/openapi.json``, which
``test_serve`` keeps equal to the served schema) so that each is a test of its own;
``test_every_operation_is_fuzzed`` checks the list against the live schema. (schemathesis's
``pytest.from_fixture`` would do this itself, but it sets a private pytest attribute that
pytest 9 no longer has.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from serving import make_index, running

from kenning.serve.server import BackgroundServer

pytestmark = pytest.mark.slow  # schemathesis against a real server

#: examples per operation and generation mode; the whole pass stays well under a minute
EXAMPLES = int(os.environ.get("KENNING_FUZZ_EXAMPLES", "20"))
EXCLUDED = {"POST /api/sync"}
SNAPSHOT = Path(__file__).parent / "snapshots" / "openapi.json"
OPERATIONS = sorted(
    f"{method.upper()} {path}"
    for path, methods in json.loads(SNAPSHOT.read_text())["paths"].items()
    for method in methods
    if f"{method.upper()} {path}" not in EXCLUDED
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    db, _ = make_index(tmp_path_factory.mktemp("fuzz"))
    with running(db) as srv:
        yield srv


@pytest.fixture(scope="module")
def api_schema(server: BackgroundServer) -> Any:
    loaded = schemathesis.openapi.from_url(f"{server.url}/api/openapi.json", timeout=30)
    loaded.config.update(base_url=server.url)
    return loaded


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    live = {f"{op.method.upper()} {op.path}" for op in _operations(api_schema)}
    assert live - EXCLUDED == set(OPERATIONS)
    assert {"GET /api/search", "POST /api/ask", "POST /v1/chat/completions"} <= live


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_server_errors(label: str, api_schema: Any, server: BackgroundServer) -> None:
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the served schema"
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=server.url, checks=[not_a_server_error], timeout=30)

        try:
            fuzz()
        except Unsatisfiable:
            # no invalid request exists (no parameters, or only free-form strings)
            assert mode is GenerationMode.NEGATIVE, label


def _operations(api_schema: Any) -> list[Any]:
    return [result.ok() for result in api_schema.get_all_operations()]
