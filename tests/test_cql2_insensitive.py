"""CQL2 case- and accent-insensitive comparison (CASEI, ACCENTI) on the names people
search without their marks, answered against an independent evaluator: Python's own
Unicode decomposition over every feature of the collection."""

from __future__ import annotations

import unicodedata

import httpx
import pytest

COLLECTION = "admin-units"


def plain(value: str) -> str:
    """Lower case without marks, as a person types it: NFD, marks dropped, đ -> d."""
    text = unicodedata.normalize("NFD", value.lower().replace("đ", "d"))
    return "".join(c for c in text if unicodedata.category(c) != "Mn")


@pytest.fixture(scope="module")
def names(api: str) -> dict[str, str]:
    found: dict[str, str] = {}
    url = f"{api}/collections/{COLLECTION}/items?limit=10000&skipGeometry=true"
    for _ in range(20):  # every page (the collection is larger than one)
        page = httpx.get(url, timeout=120).json()
        found |= {str(f["id"]): f["properties"]["name"] for f in page["features"]}
        url = next((ln["href"] for ln in page["links"] if ln["rel"] == "next"), None)
        if url is None:
            break
    assert len(found) == page.get("numberMatched", len(found))
    return found


def ids(api: str, cql: str, **extra: str) -> set[str]:
    r = httpx.get(f"{api}/collections/{COLLECTION}/items",
                  params={"filter": cql, "limit": 10000, "skipGeometry": "true", **extra},
                  timeout=120)
    assert r.status_code == 200, (cql, r.text)
    return {str(f["id"]) for f in r.json()["features"]}


@pytest.mark.parametrize("typed", ["phuc xa", "PHUC XA", "Phuc Xa", "đội cấn", "doi can",
                                   "hai chau", "ba dinh", "thanh khe"])
def test_accenti_casei_like_matches_the_evaluator(api: str, names: dict[str, str],
                                                  typed: str) -> None:
    expected = {i for i, n in names.items() if plain(typed) in plain(n)}
    got = ids(api, f"ACCENTI(CASEI(name)) LIKE ACCENTI(CASEI('%{typed}%'))")
    assert got == expected, (typed, len(got), len(expected))


def test_accenti_equality_and_casei_alone(api: str, names: dict[str, str]) -> None:
    name = next(n for n in names.values() if plain(n) != n.lower())  # one with marks
    assert ids(api, f"ACCENTI(CASEI(name)) = ACCENTI(CASEI('{plain(name).upper()}'))") == \
        {i for i, n in names.items() if plain(n) == plain(name)}
    assert ids(api, f"CASEI(name) = CASEI('{name.upper()}')") == \
        {i for i, n in names.items() if n.lower() == name.lower()}
    # the same answer as hits, and on the HTML path
    r = httpx.get(f"{api}/collections/{COLLECTION}/items",
                  params={"filter": f"ACCENTI(CASEI(name)) = ACCENTI(CASEI('{plain(name)}'))",
                          "f": "html"}, timeout=60)
    assert r.status_code == 200


@pytest.mark.parametrize("cql", ["pg_sleep(1) = 1", "CASEI(level, name) = 'x'",
                                 "UPPER(name) = 'X'"])
def test_other_functions_are_still_refused(api: str, cql: str) -> None:
    r = httpx.get(f"{api}/collections/{COLLECTION}/items", params={"filter": cql},
                  timeout=30)
    assert r.status_code == 400, r.text


def test_conformance_declares_both_classes(api: str) -> None:
    classes = httpx.get(f"{api}/conformance", params={"f": "json"}).json()["conformsTo"]
    for name in ("case-insensitive-comparison", "accent-insensitive-comparison"):
        assert f"http://www.opengis.net/spec/cql2/1.0/conf/{name}" in classes
