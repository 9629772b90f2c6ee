"""The standard's own expressions (OGC 21-065r2: the abstract test suite of Annex A and
the examples of clauses 6-7), with their queryables replaced by the sample collections'
properties of the same type, answered as cql2-text and cql2-json and compared with
cql2-rs's evaluator (see test_cql2_classes.py for what that comparison proves).

The expression forms are the standard's; the substitutions are ours. Forms the
standard has for types we do not publish (arrays) are left out; the ATS's
``textfield BETWEEN 0 AND 100`` (text against numbers) is a 400 here by design.
"""

from __future__ import annotations

import json

import cql2
import httpx
import pytest
from test_cql2_classes import compare, expected, published, server_ids  # noqa: F401

P, Z, V = "parcels-001", "planning-zones-001", "land-prices-001"

CASES = [
    # basic-cql2 (A.2): each comparison, IS [NOT] NULL, the boolean literals
    (P, "sheet_no = 2"), (P, "sheet_no <> 2"), (P, "sheet_no > 2"), (P, "sheet_no < 2"),
    (P, "sheet_no >= 2"), (P, "sheet_no <= 2"), (P, "sheet_no IS NULL"),
    (P, "sheet_no is not null"), (P, "true"), (P, "false"),
    (Z, "coverage_pct IS NULL"), (Z, "NOT coverage_pct IS NULL"),
    # clause 6/7 examples: "floors > 5 AND material = 'brick'", "swimming_pool = true"
    (Z, "max_floors > 5 AND planned_use = 'ODT'"), (Z, "max_floors>5"),
    (Z, "NOT (max_floors > 5) OR planned_use = 'DGD'"),
    (P, "parcel_ref = '00001.1.5'"), (P, "\"land_use\" = 'ODT'"),
    # advanced-comparison-operators (A.3): LIKE with %, _, an escaped wildcard; BETWEEN
    # (also backwards, which selects nothing), IN, NOT IN
    (P, "land_use LIKE '%'"), (P, "land_use like '_%'"), (P, "land_use like ''"),
    (P, "land_use like '%%'"), (P, "land_use like 'ODT\\%'"), (P, "land_use LIKE 'OD_'"),
    (P, "land_use NOT LIKE 'ODT%'"), (P, "area_m2 BETWEEN 9000 AND 11000"),
    (P, "area_m2 between 11000.0 and 9000.0"), (P, "area_m2 NOT BETWEEN 9000 AND 11000"),
    (P, "land_use IN ('ODT', 'CLN', 'DGT')"), (P, "land_use NOT IN ('ODT', 'CLN')"),
    (P, "sheet_no IN (1, 3)"),
    # case-insensitive-comparison (A.4): "CASEI(road_class) IN (CASEI('Οδος'), ...)"
    (V, "CASEI(road_name) = casei('PHỐ KIM MÃ')"), (V, "CASEI(road_name) <> casei('phố kim mã')"),
    (V, "CASEI(road_name) LIKE casei('phố%')"), (V, "CASEI(road_name) LIKE casei('PHỐ%')"),
    (V, "CASEI(road_class) IN (CASEI('1A'), CASEI('2A'))"),
    # accent-insensitive-comparison (A.5): "ACCENTI(etat_vol) = ACCENTI('débárquér')"
    (V, "ACCENTI(road_name) = accenti('Phô Kim Mă')"),
    (V, "ACCENTI(road_name) <> accenti('Pho Kim Ma')"),
    (V, "ACCENTI(road_name) LIKE accenti('Phố K%')"),
    (V, "ACCENTI(CASEI(road_name)) = accenti(casei('PHO KIM MA'))"),
    (V, "ACCENTI(CASEI(road_name)) LIKE accenti(casei('pho%'))"),
    # basic-spatial-functions (A.6) and -plus (A.7)
    (P, "S_INTERSECTS(geometry,BBOX(-180,-90,180,90))"),
    (P, "S_INTERSECTS(geom,POINT(105.8 21.03))"),
    (P, "S_INTERSECTS(geometry,BBOX(-180,-90,-90,90)) AND S_INTERSECTS(geometry,BBOX(90,-90,180,90))"),  # noqa: E501 - the standard's geometry
    (P, "S_INTERSECTS(geometry,MULTIPOINT(105.81 21.03, 105.82 21.035))"),
    (P, "S_INTERSECTS(geometry,LINESTRING(105.79 21.03, 105.85 21.04))"),
    (P, "S_INTERSECTS(geometry,MULTILINESTRING((105.79 21.03, 105.85 21.04), (105.8 21.02, 105.81 21.05)))"),  # noqa: E501 - the standard's geometry
    (P, "S_INTERSECTS(geometry,POLYGON((105.79 21.02, 105.86 21.02, 105.86 21.05, 105.79 21.05, 105.79 21.02), (105.81 21.03, 105.83 21.03, 105.83 21.04, 105.81 21.04, 105.81 21.03)))"),  # noqa: E501 - the standard's geometry
    (P, "S_INTERSECTS(geometry,MULTIPOLYGON(((105.79 21.02, 105.80 21.02, 105.80 21.03, 105.79 21.02)), ((105.82 21.03, 105.83 21.03, 105.83 21.04, 105.82 21.03))))"),  # noqa: E501 - the standard's geometry
    (P, "S_INTERSECTS(geometry,GEOMETRYCOLLECTION(POINT(105.8 21.03), POLYGON((105.82 21.03, 105.83 21.03, 105.83 21.04, 105.82 21.04, 105.82 21.03))))"),  # noqa: E501 - the standard's geometry
    # spatial-functions (A.8)
    (P, "S_DISJOINT(geometry,BBOX(105.79,21.02,105.82,21.04))"),
    (P, "S_DISJOINT(geometry,LINESTRING(105.79 21.03, 105.85 21.04))"),
    (P, "S_EQUALS(geometry,POINT(105.8 21.03))"),
    (P, "S_TOUCHES(geometry,LINESTRING(105.79 21.03, 105.85 21.04))"),
    (P, "S_CROSSES(geometry,LINESTRING(105.79 21.03, 105.85 21.04))"),
    (V, "S_CROSSES(geometry,LINESTRING(105.79 21.03, 105.85 21.04))"),
    (P, "S_WITHIN(geometry,BBOX(105.79,21.02,105.83,21.04))"),
    (P, "S_WITHIN(geometry,POLYGON((105.79 21.02, 105.86 21.02, 105.86 21.05, 105.79 21.05, 105.79 21.02)))"),  # noqa: E501 - the standard's geometry
    (P, "S_OVERLAPS(geometry,BBOX(105.79,21.02,105.83,21.04))"),
    (P, "S_CONTAINS(geometry,POINT(105.8 21.03))"),
    (P, "S_CONTAINS(geometry,MULTIPOINT(105.81 21.03, 105.82 21.035))"),
    (Z, "S_CONTAINS(BBOX(105.79,21.02,105.83,21.04), geometry)"),
    # temporal-functions (A.9), the ATS's instants and intervals against our dates
    (Z, "T_AFTER(decision_date,DATE('2021-01-01'))"),
    (Z, "T_AFTER(decision_date,INTERVAL('2021-01-01','2021-12-31'))"),
    (Z, "T_BEFORE(decision_date,TIMESTAMP('2022-04-24T07:59:57Z'))"),
    (Z, "T_DISJOINT(decision_date,INTERVAL('2021-01-01','2021-12-31'))"),
    (Z, "T_EQUALS(decision_date,DATE('2021-08-03'))"),
    (Z, "T_INTERSECTS(decision_date,INTERVAL('2021-01-01','2021-12-31'))"),
    (V, "T_INTERSECTS(INTERVAL(effective_from, effective_to), INTERVAL('2026-06-10', '..'))"),
    (V, "T_DURING(INTERVAL(effective_from, effective_to), INTERVAL('2025-06-10', '2027-01-01'))"),
    (P, "T_AFTER(valid_from,TIMESTAMP('2022-04-24T07:59:57Z'))"),
    (P, "T_BEFORE(valid_from,INTERVAL('2021-01-01T00:00:00Z','2021-12-31T23:59:59Z'))"),
    # property-property (A.10) and arithmetic (A.11: "vehicle_height > (bridge_clearance - 1)")
    (P, "legal_area_m2 = area_m2"), (P, "legal_area_m2 <> area_m2"),
    (P, "legal_area_m2 > area_m2"), (P, "sheet_no < parcel_no"),
    (P, "sheet_no = sheet_no"), (P, "area_m2 <= area_m2"), (P, "commune_code = current_commune_code"),  # noqa: E501 - the standard's geometry
    (P, "legal_area_m2 > (area_m2 - 100)"), (P, "area_m2 * 2 > legal_area_m2 + 10000"),
    (Z, "far * 10 >= max_floors"), (Z, "max_floors % 5 = 0"), (Z, "max_floors div 10 = 1"),
    (Z, "coverage_pct / 10 ^ 2 < 0.5"), (Z, "-max_floors < -10"),
]


@pytest.mark.parametrize(("cid", "cql"), CASES)
def test_the_standards_expressions(api: str, published: dict, cid: str, cql: str  # noqa: F811
                                   ) -> None:
    _, features = published[cid]
    want, _ = expected(cql, features, fold="ACCENTI" in cql.upper())
    got = server_ids(api, cid, {"filter": cql})
    assert compare(want, got), (cql, len(got), len(want))
    tree = json.dumps(cql2.parse_text(cql).to_json())
    assert server_ids(api, cid, {"filter": tree, "filter-lang": "cql2-json"}) == got


def test_text_between_numbers_is_a_400(api: str) -> None:
    r = httpx.get(f"{api}/collections/{P}/items", params={"filter": "land_use BETWEEN 0 AND 100"},
                  timeout=60)
    assert r.status_code == 400 and "cannot be compared" in r.text, r.text
