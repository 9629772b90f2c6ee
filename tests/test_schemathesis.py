"""Property-based fuzzing of the platform's own OpenAPI document with schemathesis: no
generated request may produce a 5xx.

pygeoapi's document refers to schemas on schemas.opengis.net; with no network here, each
external reference is replaced by a local stand-in of the same kind (a response, a query
parameter or a permissive schema) before the document is loaded.
"""

from __future__ import annotations

import re
from collections import Counter

import httpx
import schemathesis

MAX_EXAMPLES = 8  # per operation: bounded, the suite must stay fast
EXTERNAL = re.compile(r"^https?://")


def _localise(node: object, context: str = "") -> object:
    """Replace external $refs by stand-ins chosen by where they occur."""
    if isinstance(node, list):
        return [_localise(item, context) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and EXTERNAL.match(ref):
        name = ref.rsplit("/", 1)[-1].split(".")[0]
        if context == "responses":
            return {"description": name}
        if context == "parameters":
            return {"name": name, "in": "query", "required": False,
                    "schema": {"type": "string"}}
        return {}
    return {key: _localise(value, key if key in ("responses", "parameters") else
                           ("" if context == "responses" and key.isdigit() else context))
            for key, value in node.items()}


def _document(api: str) -> dict:
    doc = httpx.get(f"{api}/openapi?f=json", timeout=60).json()
    doc = _localise(doc)
    doc["servers"] = [{"url": api}]
    return doc


def test_no_request_from_the_openapi_document_gets_a_5xx(api: str) -> None:
    schema = schemathesis.openapi.from_dict(_document(api))
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() not in ("GET",):
            continue  # writes and process executions are covered by their own tests
        operations += 1
        strategy = operation.as_strategy()
        from hypothesis import HealthCheck, given, settings

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run(case) -> None:  # noqa: ANN001
            response = case.call(base_url=api, timeout=30)
            statuses[response.status_code // 100 * 100] += 1
            if response.status_code >= 500:
                failures.append(f"{response.status_code} {case.method} {case.formatted_path}"
                                f" {case.query} -> {response.text[:200]}")

        run()
    assert operations > 20
    assert statuses[200] > 0 and statuses[400] > 0, statuses
    assert not failures, "\n".join(failures[:10])
