"""Planning over real HTTP: zone collections per district (GDAL OAPIF), the plan register,
and the overlay process checked against shapely and for owner data."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator

import httpx
import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import text
from sqlalchemy.engine import Engine

from planning.overlay import COLUMNS
from support import SAMPLES, found_in

PROCESS = "planning-overlay"
OWNER_FIELDS = ("TenChu", "SoCCCD", "SoGCN")


@pytest.fixture(scope="module")
def plans() -> list[dict]:
    return json.loads((SAMPLES / "plans" / "manifest.json").read_text(encoding="utf-8"))


def get(url: str, **params) -> httpx.Response:  # noqa: ANN003
    return httpx.get(url, params=params, timeout=60)


def execute(api: str, inputs: dict, **body) -> httpx.Response:  # noqa: ANN003
    return httpx.post(f"{api}/processes/{PROCESS}/execution", json={"inputs": inputs, **body},
                      timeout=120)


def test_collections_per_district_and_plans(api: str, plans: list[dict]) -> None:
    ids = {c["id"] for c in get(f"{api}/collections", f="json").json()["collections"]}
    expected = {f"planning-zones-{p['district_code']}" for p in plans}
    assert expected | {"planning-zones", "plans"} <= ids
    assert {i for i in ids if i.startswith("planning-zones-")} == expected
    register = get(f"{api}/collections/plans/items", f="json").json()
    by_code = {f["properties"]["plan_code"]: f for f in register["features"]}
    assert set(by_code) == {p["plan_code"] for p in plans}
    for p in plans:
        feature = by_code[p["plan_code"]]
        assert feature["geometry"] is None
        assert feature["properties"]["zone_count"] == p["zone_count"]
        assert feature["properties"]["district_code"] == p["district_code"]


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL command-line tools missing")
def test_ogrinfo_zone_counts_match_manifest(api: str, plans: list[dict]) -> None:
    for p in plans:
        out = subprocess.run(["ogrinfo", "-so", f"OAPIF:{api}",
                              f"planning-zones-{p['district_code']}"],
                             capture_output=True, text=True, timeout=120, check=True).stdout
        count = int(re.search(r"Feature Count: (\d+)", out).group(1))
        assert count == p["zone_count"], p["file"]


def test_national_zones_filter_by_plan_and_district(api: str, plans: list[dict]) -> None:
    for p in plans:
        for key, value in (("plan_code", p["plan_code"]), ("district_code", p["district_code"])):
            body = get(f"{api}/collections/planning-zones/items", f="json",
                       resulttype="hits", **{key: value}).json()
            assert body["numberMatched"] == p["zone_count"], (key, value)
    page = get(f"{api}/collections/planning-zones-001/items", f="json", limit=5).json()
    props = page["features"][0]["properties"]
    assert {"zone_code", "planned_use", "coverage_pct", "max_floors", "far",
            "decision_no", "plan_code"} <= set(props)
    assert page["features"][0]["geometry"]["type"] == "MultiPolygon"


def test_process_is_described(api: str) -> None:
    listed = {p["id"] for p in get(f"{api}/processes", f="json").json()["processes"]}
    assert PROCESS in listed
    desc = get(f"{api}/processes/{PROCESS}", f="json").json()
    assert set(desc["inputs"]) == {"plan_code", "district_code", "min_share"}
    assert set(desc["outputs"]) == {"parcels", "summary"}


@pytest.fixture(scope="module")
def executed(api: str, plans: list[dict]) -> Iterator[tuple[dict, dict]]:
    plan = next(p for p in plans if p["district_code"] == "492")
    r = execute(api, {"plan_code": plan["plan_code"], "district_code": "492",
                      "min_share": 0.01})
    assert r.status_code == 200, r.text[:500]
    yield plan, r.json() | {"_text": r.text}


def test_process_overlaps_match_shapely(executed: tuple[dict, dict], api_db: Engine) -> None:
    plan, body = executed
    features = body["parcels"]["features"]
    assert len(features) > 1000
    assert all(set(f["properties"]) == set(COLUMNS) for f in features)
    assert {f["properties"]["district_code"] for f in features} == {"492"}
    assert all(f["properties"]["share"] >= 0.01 for f in features)
    # independent: the exact stored geometries, projected by pyproj, cut by shapely
    parcel_ids = sorted({f["properties"]["parcel_id"] for f in features})
    with api_db.connect() as conn:
        parcels = dict(conn.execute(text(
            "SELECT id, ST_AsBinary(geom) FROM publish.parcels WHERE id = ANY(:ids)"),
            {"ids": parcel_ids}).all())
        zones = dict(conn.execute(text(
            "SELECT id, ST_AsBinary(geom) FROM publish.planning_zones WHERE plan_code = :p"),
            {"p": plan["plan_code"]}).all())
    tr = Transformer.from_crs(4326, plan["source_epsg"], always_xy=True)

    def tm3(wkb: list) -> np.ndarray:
        return shapely.transform(shapely.from_wkb([bytes(w) for w in wkb]),
                                 lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))

    pg = tm3([parcels[f["properties"]["parcel_id"]] for f in features])
    zg = tm3([zones[f["properties"]["zone_id"]] for f in features])
    expected = shapely.area(shapely.intersection(pg, zg))
    got = np.array([f["properties"]["overlap_m2"] for f in features])
    assert np.all(np.abs(got - expected) <= np.maximum(0.001 * expected, 0.01))
    share = np.array([f["properties"]["share"] for f in features])
    assert np.all(np.abs(share - expected / shapely.area(pg)) <= 0.001 * share + 1e-6)
    # the feature's geometry is the parcel's
    sent = shapely.from_geojson([json.dumps(f["geometry"]) for f in features[:100]])
    stored = shapely.from_wkb([bytes(parcels[f["properties"]["parcel_id"]])
                               for f in features[:100]])
    assert shapely.equals_exact(sent, stored, tolerance=1e-7).all()
    # the summary adds up the features
    summary = body["summary"]
    assert summary["pairs"] == len(features)
    assert summary["parcels"] == len(parcel_ids)
    assert summary["total_overlap_m2"] == pytest.approx(got.sum(), rel=1e-9)
    assert sum(u["overlap_m2"] for u in summary["area_by_planned_use"]) == \
        pytest.approx(got.sum(), rel=1e-9)
    disagreeing = {f["properties"]["parcel_id"] for f in features
                   if f["properties"]["disagrees"]}
    assert summary["parcels_disagreeing"] == len(disagreeing) > 0


def test_process_output_has_no_owner_data(executed: tuple[dict, dict],
                                          manifest: list[dict]) -> None:
    _, body = executed
    secrets: set[str] = set()
    for entry in manifest:
        frame = pyogrio.read_dataframe(SAMPLES / entry["file"], read_geometry=False)
        for national in OWNER_FIELDS:
            column = entry["fields"][national]
            secrets |= {str(v) for v in frame[column].dropna() if str(v).strip()}
    assert len(secrets) > 1000
    # every distinct key and text value of the response, and its numbers (as text)
    texts: set[str] = set()
    numbers: set[str] = set()
    stack: list = [{k: v for k, v in body.items() if k != "_text"}]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            texts |= set(item)
            stack += [v for k, v in item.items() if k != "coordinates"]
        elif isinstance(item, list):
            stack += item
        elif isinstance(item, str):
            texts.add(item)
        elif item is not None:
            numbers.add(str(item))
    assert len(texts) > 1000  # parcel refs, codes, functions...
    blob = "\n".join(texts)
    assert not found_in(secrets, blob) and not secrets & numbers
    for name in ("owner", "full_name", "id_number", "certificate", "party"):
        assert name not in blob.lower(), name


@pytest.mark.parametrize(("inputs", "message"), [
    ({"plan_code": "NO-SUCH-PLAN"}, "no published plan with code 'NO-SUCH-PLAN'"),
    ({}, "plan_code is required"),
    ({"plan_code": "QHPK-001-2021-2030", "min_share": 1.5}, "min_share must be"),
    ({"plan_code": "QHPK-001-2021-2030", "district_code": "1'; --"}, "3 digits"),
    ({"plan_code": "QHPK-001-2021-2030", "owner": True}, "unknown input(s): owner"),
])
def test_process_rejects_bad_input_clearly(api: str, inputs: dict, message: str) -> None:
    r = execute(api, inputs)
    assert r.status_code == 400 and message in r.json()["description"], r.text
    assert "select" not in r.text.lower() and "sql" not in r.text.lower()


def test_process_can_return_the_summary_only(api: str, plans: list[dict]) -> None:
    plan = next(p for p in plans if p["district_code"] == "001")
    r = execute(api, {"plan_code": plan["plan_code"]}, outputs={"summary": {}})
    assert r.status_code == 200 and set(r.json()) == {"summary"}
    assert r.json()["summary"]["zones"] == plan["zone_count"]
