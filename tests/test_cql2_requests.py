"""CQL2 as clients send it: what used to be refused, cql2-json on GET and POST, the
HTML pages, filter-crs, NULLs and open intervals with their answers written out, and
the bounds that keep a hostile filter from the parser's stack."""

from __future__ import annotations

import json

import cql2
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from shapely.geometry import shape

PARCELS = "/collections/parcels-001/items"  # writable: a plain JSON POST is a create
ZONES = "/collections/planning-zones-001/items"
PRICES = "/collections/land-prices-001/items"
CQL_JSON = {"Content-Type": "application/query-cql-json"}


def ids(api: str, path: str, **params: str) -> set:
    r = httpx.get(api + path, params={"limit": 10000, "skipGeometry": "true", **params},
                  timeout=60)
    assert r.status_code == 200, (params, r.status_code, r.text[:300])
    return {f["id"] for f in r.json()["features"]}


def refused(api: str, path: str, **params: str) -> str:
    r = httpx.get(api + path, params=params, timeout=60)
    assert r.status_code == 400, (params, r.status_code, r.text[:300])
    return r.text


@pytest.mark.parametrize("cql", [
    "S_INTERSECTS(geometry, BBOX(105.80, 21.02, 105.83, 21.04))",
    "NOT (area_m2 > 10000)",
    "NOT (land_use = 'ODT') AND S_WITHIN(geom, BBOX(105, 20, 107, 22))",
])
def test_once_refused_expressions_are_answered_on_every_path(api: str, cql: str) -> None:
    """BBOX literals and NOT before a bracket, which pygeofilter refused: JSON, hits,
    HTML and JSON-LD (pygeoapi's provider path) agree."""
    got = ids(api, PARCELS, filter=cql)
    assert got, cql
    hits = httpx.get(api + PARCELS, params={"filter": cql, "resulttype": "hits"},
                     timeout=60).json()
    assert hits["numberMatched"] == len(got)
    html = httpx.get(api + PARCELS, params={"filter": cql, "f": "html"}, timeout=60)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    ld = httpx.get(api + PARCELS, params={"filter": cql, "f": "jsonld", "limit": 500},
                   timeout=60).json()
    assert {int(f["@id"].rsplit("/", 1)[1]) for f in ld["features"]} <= got
    assert len(ld["features"]) == min(len(got), 500)


def test_cql2_json_on_get_and_post_answers_as_text_does(api: str) -> None:
    cql = "land_use IN ('ODT', 'TMD', 'DGD') AND area_m2 BETWEEN 150 AND 3000"
    tree = json.dumps(cql2.parse_text(cql).to_json())
    want = ids(api, PARCELS, filter=cql)
    assert want
    assert ids(api, PARCELS, filter=tree, **{"filter-lang": "cql2-json"}) == want
    r = httpx.post(api + PARCELS, content=tree, headers=CQL_JSON,
                   params={"limit": 10000, "skipGeometry": "true"}, timeout=60)
    assert r.status_code == 200, r.text[:300]
    assert {f["id"] for f in r.json()["features"]} == want
    # the POST's next page is a GET that carries the filter
    page = httpx.post(api + PARCELS, content=tree, headers=CQL_JSON, params={"limit": 3},
                      timeout=60).json()
    nxt = next(ln["href"] for ln in page["links"] if ln["rel"] == "next")
    second = httpx.get(nxt, timeout=60).json()["features"]
    seen = [f["id"] for f in page["features"]] + [f["id"] for f in second]
    assert len(set(seen)) == 6 and set(seen) <= want
    # on the HTML path, pygeoapi hands the JSON over to the same parser
    html = httpx.get(api + PARCELS, params={"filter": tree, "filter-lang": "cql2-json",
                                            "f": "html"}, timeout=60)
    assert html.status_code == 200


def test_post_media_types(api: str) -> None:
    tree = json.dumps({"op": "=", "args": [{"property": "planned_use"}, "ODT"]})
    want = ids(api, ZONES, filter="planned_use = 'ODT'")
    for media in ("application/query-cql-json", "application/cql2+json",
                  "application/json"):  # a collection without writes takes plain JSON
        r = httpx.post(api + ZONES, content=tree, headers={"Content-Type": media},
                       params={"limit": 1000}, timeout=60)
        assert r.status_code == 200, (media, r.text[:300])
        assert {f["id"] for f in r.json()["features"]} == want
    for body, status in ((b"{not json", 400), (b'{"op": "nope", "args": []}', 400),
                         (b'{"op":"=","args":[' * 10_000, 400),
                         (b'"' + b" " * (300 * 1024) + b'"', 413)):
        r = httpx.post(api + ZONES, content=body, headers=CQL_JSON, timeout=60)
        assert r.status_code == status, (body[:40], r.status_code, r.text[:200])
    r = httpx.post(api + ZONES, content=tree, headers=CQL_JSON,
                   params={"filter": "planned_use = 'x'"}, timeout=60)
    assert r.status_code == 400 and "body" in r.json()["description"]


def test_filter_crs(api: str) -> None:
    """A geometry literal in another CRS the collection offers: EPSG:4326's latitude
    first, Web Mercator metres."""
    feature = httpx.get(api + PARCELS, params={"limit": 1}, timeout=60).json()["features"][0]
    point = shape(feature["geometry"]).representative_point()
    lon, lat = point.x, point.y
    assert feature["id"] in ids(api, PARCELS, filter=f"S_INTERSECTS(geometry, POINT({lon} {lat}))")
    epsg = "http://www.opengis.net/def/crs/EPSG/0/"
    assert feature["id"] in ids(api, PARCELS, filter=f"S_INTERSECTS(geometry, POINT({lat} {lon}))",
                                **{"filter-crs": epsg + "4326"})
    x, y = Transformer.from_crs(4326, 3857, always_xy=True).transform(lon, lat)
    assert feature["id"] in ids(api, PARCELS, filter=f"S_INTERSECTS(geometry, POINT({x} {y}))",
                                **{"filter-crs": epsg + "3857"})
    assert "not offered" in refused(api, PARCELS, filter="S_INTERSECTS(geometry, POINT(1 2))",
                                    **{"filter-crs": epsg + "32648"})


def test_null_is_not_true(api: str) -> None:
    """CQL2: a comparison with NULL is not true, nor is its negation."""
    every = ids(api, ZONES)
    nulls = ids(api, ZONES, filter="coverage_pct IS NULL")
    assert nulls and nulls < every
    above = ids(api, ZONES, filter="coverage_pct > 40")
    not_above = ids(api, ZONES, filter="NOT (coverage_pct > 40)")
    assert above | not_above == every - nulls and not (above & not_above)
    one = ids(api, ZONES, filter="zone_code = 'A01'")
    assert ids(api, ZONES, filter="coverage_pct > 1000 OR zone_code = 'A01'") == one
    assert ids(api, ZONES, filter="coverage_pct IS NOT NULL") == every - nulls


@pytest.mark.parametrize(("cql", "everything"), [
    # each price row is valid 2026-01-01 .. 2026-12-31
    ("T_DURING(INTERVAL(effective_from, effective_to), INTERVAL('2025-01-01', '..'))", True),
    ("T_DURING(INTERVAL(effective_from, effective_to), INTERVAL('..', '2026-06-01'))", False),
    ("T_AFTER(effective_from, INTERVAL('..', '2025-12-31'))", True),
    ("T_BEFORE(effective_to, INTERVAL('..', '..'))", False),
    ("T_INTERSECTS(INTERVAL(effective_from, effective_to), DATE('2026-07-01'))", True),
    ("T_MEETS(INTERVAL('2025-01-01', '2026-01-01'), INTERVAL(effective_from, effective_to))",
     True),
    ("T_METBY(INTERVAL(effective_from, effective_to), INTERVAL('..', '2026-01-01'))", True),
    ("T_STARTS(INTERVAL(effective_from, '2026-06-30'), INTERVAL(effective_from, effective_to))",
     True),
    ("T_FINISHES(INTERVAL('2026-06-30', effective_to), INTERVAL(effective_from, '..'))",
     False),
    ("T_EQUALS(INTERVAL(effective_from, effective_to), INTERVAL('2026-01-01', '2026-12-31'))",
     True),
    ("T_CONTAINS(INTERVAL(effective_from, effective_to), TIMESTAMP('2026-03-01T10:00:00Z'))",
     True),
    ("T_DISJOINT(effective_from, INTERVAL('2026-01-02', '..'))", True),
    ("T_OVERLAPS(INTERVAL('2025-06-01', '2026-06-01'), INTERVAL(effective_from, effective_to))",
     True),
    ("T_OVERLAPPEDBY(INTERVAL(effective_from, effective_to), INTERVAL('2025-06-01', '2026-06-01'))",
     True),
    ("T_STARTEDBY(INTERVAL(effective_from, effective_to), effective_from)", True),
    ("T_STARTEDBY(effective_from, INTERVAL(effective_from, effective_to))", False),
    ("T_FINISHEDBY(INTERVAL('2025-01-01', effective_to), INTERVAL(effective_from, effective_to))",
     True),
])
def test_temporal_relations_with_open_ends(api: str, cql: str, everything: bool) -> None:
    """Expectations worked out by hand from the standard's definitions, and the same
    from cql2-rs's evaluator."""
    features = httpx.get(api + PRICES, params={"limit": 1000}, timeout=60).json()["features"]
    every = {f["id"] for f in features}
    assert ids(api, PRICES, filter=cql) == (every if everything else set()), cql
    expr = cql2.parse_text(cql)
    assert all(expr.matches(f) == everything for f in features), cql


@pytest.mark.parametrize("html", [False, True])
def test_nesting_beyond_the_parsers_stack_is_a_400(api: str, html: bool) -> None:
    """cql2-rs recurses; about 3,000 brackets overflow its stack (the process dies):
    bounded before it parses, on the JSON and the HTML path, and the server lives."""
    fmt = {"f": "html" if html else "json"}
    deep = "(" * 3000 + "area_m2 > 1" + ")" * 3000
    assert "nested deeper" in refused(api, PARCELS, filter=deep, **fmt)
    assert "NOT" in refused(api, PARCELS, filter="NOT " * 1500 + "area_m2 > 1", **fmt)
    assert "signs" in refused(api, PARCELS, filter="area_m2 > " + "-" * 4000 + "1", **fmt)
    tree = '{"op":"not","args":[' * 500 + "true" + "]}" * 500
    refused(api, ZONES, filter=tree, **{"filter-lang": "cql2-json"}, **fmt)
    assert ids(api, PARCELS, filter="(((area_m2 > 1)))")


@pytest.mark.parametrize("cql", [
    "pg_sleep(1) = 1", "A_CONTAINS(land_use, ('ODT'))", "land_use = area_m2",
    "S_INTERSECTS(area_m2, POINT(1 2))", "T_AFTER(land_use, DATE('2020-01-01'))",
    "CASEI(area_m2) = 'x'", "area_m2 + 'x' > 1", "land_use LIKE 5",
    "S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))",
    "S_INTERSECTS(geometry, BBOX(2, 2, 1, 1))", "area_m2 > 1 AND geometry",
    "valid_from > DATE('2020-13-01')", "area_m2 IN ()",
])
def test_what_is_not_answered_is_a_400_that_says_why(api: str, cql: str) -> None:
    body = json.loads(refused(api, PARCELS, filter=cql))
    assert body["code"] == "InvalidParameterValue" and body["description"]
    assert "SELECT" not in body["description"] and "publish." not in body["description"]


def test_conformance_declares_the_classes(api: str) -> None:
    classes = httpx.get(f"{api}/conformance", params={"f": "json"}).json()["conformsTo"]
    for name in ("cql2-text", "cql2-json", "basic-cql2", "advanced-comparison-operators",
                 "case-insensitive-comparison", "accent-insensitive-comparison",
                 "basic-spatial-functions", "basic-spatial-functions-plus",
                 "spatial-functions", "temporal-functions", "property-property",
                 "arithmetic"):
        assert f"http://www.opengis.net/spec/cql2/1.0/conf/{name}" in classes, name


# -- cql2-json fuzzed: trees of real and made-up operators over real and made-up operands --
OPS = ["and", "or", "not", "=", "<>", "<", ">=", "like", "between", "in", "isNull",
       "casei", "accenti", "+", "/", "%", "div", "^", "s_intersects", "s_within",
       "s_equals", "t_after", "t_during", "t_meets", "a_contains", "pg_sleep", "lower"]
leaf = st.one_of(
    st.sampled_from([{"property": p} for p in ("area_m2", "land_use", "sheet_no", "geometry",
                                               "valid_from", "geom", "nosuch")]),
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=8),
    st.just({"date": "2026-01-01"}), st.just({"timestamp": "2026-01-01T00:00:00Z"}),
    st.just({"interval": ["2026-01-01", ".."]}), st.just({"bbox": [105.8, 21.0, 105.9, 21.1]}),
    st.just({"type": "Point", "coordinates": [105.8, 21.0]}), st.just({"date": "2026-13-01"}),
    st.just({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}))
tree = st.recursive(leaf, lambda inner: st.one_of(
    st.fixed_dictionaries({"op": st.sampled_from(OPS),
                           "args": st.lists(inner, max_size=3)}),
    st.lists(inner, max_size=3)), max_leaves=8)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=tree, html=st.booleans())
def test_cql2_json_never_5xx(api: str, body: object, html: bool) -> None:
    r = httpx.get(api + PARCELS, timeout=60, params={
        "filter": json.dumps(body), "filter-lang": "cql2-json", "limit": "2",
        "f": "html" if html else "json"})
    assert r.status_code in (200, 400), (body, r.status_code, r.text[:300])
    assert "traceback" not in r.text.lower() and "psycopg" not in r.text.lower()
