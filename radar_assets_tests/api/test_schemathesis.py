"""Property-based tests of every operation against the app's own OpenAPI schema (Schemathesis).

Positive and negative examples per operation: no server error, status codes, content types, headers and
bodies as documented, schema-invalid requests rejected. ``positive_data_acceptance`` is left out on
purpose: a schema-valid request may still be a 422 (a well-formed but forged cursor, ``start`` after
``end``, a tile column beyond ``2**z``) because the schema cannot express those rules. ``/events`` and
``/live/stream`` stream forever and have their own tests.

The operations are listed from an app built without a catalog (building one touches no files), and the
examples run against the app on the test catalog, so ids from the schema's examples hit real rows.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from radar_assets.api import create_app
from radar_assets_tests.conftest import settings_for

MAX_EXAMPLES = 100
_SPEC = create_app(settings_for("/nonexistent")).openapi()["paths"]
STREAMS = {"/events", "/live/stream"}
OPERATIONS = sorted(path for path in _SPEC if path not in STREAMS)
#: (path, method): GET everywhere, plus the compute-only POST (ad-hoc zonal extraction).
METHODS = sorted((path, method) for path in OPERATIONS for method in _SPEC[path])
CASES = [
    pytest.param(
        path, method, mode, id=f"{path}-{mode.value}" if method == "get" else f"{method} {path}-{mode.value}"
    )
    for path, method in METHODS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    # an operation without parameters has no schema-violating request to generate
    if mode is GenerationMode.POSITIVE
    or _SPEC[path][method].get("parameters")
    or _SPEC[path][method].get("requestBody")
]


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_operation_is_covered(api_schema):
    assert OPERATIONS == sorted(p for p in api_schema.raw_schema["paths"] if p not in STREAMS)
    assert len(OPERATIONS) >= 14


@pytest.mark.parametrize(("path", "method", "mode"), CASES)
def test_operation_conforms_to_schema(api_schema, path, method, mode):
    operation = api_schema[path][method.upper()]
    statuses = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def run(case):
        response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
        assert response.status_code < 500
        statuses.append(response.status_code)

    run()
    assert statuses
    if mode is GenerationMode.NEGATIVE:
        # Schemathesis' negative_data_rejection check judges each case (some "invalid" values serialise
        # to valid ones, e.g. the list ["null"] as ?site=null); this only makes sure negatives really ran.
        rejected = sum(400 <= s < 500 for s in statuses)
        assert rejected >= 0.8 * len(statuses), statuses
