"""The service fuzzed from its own OpenAPI schema (schemathesis) on a real socket: whatever
a generated request holds, no answer is a 5xx and every answer is one the schema allows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import tiny_model_folder
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip("schemathesis")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from gplinker.predict import GPLinker
    from gplinker.serve import Limits, create_app, serving

    folder = tiny_model_folder("event", tmp_path_factory.mktemp("fuzz") / "m")
    app = create_app(
        GPLinker.from_pretrained(folder, device="cpu"),
        limits=Limits(max_texts=8, max_chars=2000, max_body=20_000, max_queue=8),
        api_key="fuzz-key",
    )
    with serving(app) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(base_url: str):
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json")


@pytest.mark.parametrize(
    ("method", "path", "mode"),
    [
        ("POST", "/extract", "positive"),  # requests the schema allows
        ("POST", "/extract", "negative"),  # and requests it does not
        ("GET", "/schema", "positive"),
        ("GET", "/health", "positive"),
    ],
)
def test_no_request_gets_a_5xx(api_schema, base_url: str, method: str, path: str, mode: str):
    from schemathesis.generation import GenerationMode

    strategy = api_schema[path][method].as_strategy(generation_mode=GenerationMode(mode))
    seen: set[int] = set()

    @given(case=strategy)
    @settings(
        max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case) -> None:
        for headers in ({"Authorization": "Bearer fuzz-key"}, {}):  # with the key, without
            response = case.call(base_url=base_url, headers=headers)
            seen.add(response.status_code)
            assert response.status_code < 500, (case.body, response.status_code, response.text)
            if not headers and path != "/health":
                assert response.status_code == 401
            elif response.status_code == 200:
                case.validate_response(response)

    check()
    assert 200 in seen or mode == "negative", seen  # valid requests did reach the model
