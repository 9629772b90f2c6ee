"""Real clients: GDAL's OAPIF driver (what QGIS uses) and OWSLib."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from owslib.ogcapi.features import Features
from pyproj import Transformer

pytestmark = pytest.mark.skipif(shutil.which("ogrinfo") is None,
                                reason="GDAL command-line tools (gdal-bin) not installed")


def test_ogrinfo_counts_match_sample_files(api: str, manifest: list[dict]) -> None:
    for entry in manifest:
        out = subprocess.run(["ogrinfo", "-so", f"OAPIF:{api}",
                              f"parcels-{entry['district_code']}"],
                             capture_output=True, text=True, timeout=120, check=True).stdout
        count = int(re.search(r"Feature Count: (\d+)", out).group(1))
        assert count == entry["feature_count"], entry["file"]


def test_ogr2ogr_pulls_a_whole_district(api: str, manifest: list[dict],
                                       tmp_path: Path) -> None:
    """The whole district into a GeoPackage; drawn areas within the regulation's
    permissible difference of DienTich at the file's scale (0.0004 * M * sqrt(P))."""
    entry = next(e for e in manifest if e["format"] == "ESRI Shapefile")
    out = tmp_path / "district.gpkg"
    subprocess.run(["ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{api}",
                    f"parcels-{entry['district_code']}"], check=True, timeout=300,
                   capture_output=True)
    frame = pyogrio.read_dataframe(out, datetime_as_string=True)
    assert len(frame) == entry["feature_count"]
    tr = Transformer.from_crs(frame.crs, f"EPSG:{entry['source_epsg']}", always_xy=True)
    metric = shapely.transform(np.asarray(frame.geometry.values),
                               lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
    allowed = 0.0004 * entry["scale"] * np.sqrt(frame["area_m2"])
    assert (np.abs(shapely.area(metric) - frame["area_m2"]) <= allowed).all()
    assert {"owner_name", "owner_id_number", "certificate_serial"}.isdisjoint(frame.columns)
    # every property arrives with its declared type (QGIS users filter and join on them)
    info = pyogrio.read_info(out)
    types = dict(zip(info["fields"], info["dtypes"], strict=True))
    assert types["parcel_ref"] == "object" and types["sheet_no"].startswith("int")


def test_owslib_reads_collections_and_items(api: str, manifest: list[dict]) -> None:
    client = Features(api)
    ids = {c["id"] for c in client.collections()["collections"]}
    district = f"parcels-{manifest[0]['district_code']}"
    assert district in ids
    items = client.collection_items(district, limit=10)
    assert items["numberReturned"] == 10
    assert items["numberMatched"] == manifest[0]["feature_count"]
    queryables = client.collection_queryables(district)
    assert "land_use" in queryables["properties"]
    one = client.collection_item(district, str(items["features"][0]["id"]))
    assert one["id"] == items["features"][0]["id"]


def test_owslib_filters(api: str, manifest: list[dict]) -> None:
    """OWSLib's items call with a CQL2 filter and a bbox: the server's own counts."""
    client = Features(api)
    district = f"parcels-{manifest[0]['district_code']}"
    everything = client.collection_items(district, limit=1)["numberMatched"]
    odt = client.collection_items(district, limit=1, filter="land_use = 'ODT'")
    assert 0 < odt["numberMatched"] < everything
    assert {f["properties"]["land_use"] for f in odt["features"]} == {"ODT"}
    bbox = client.collection(district)["extent"]["spatial"]["bbox"][0]
    inside = client.collection_items(district, limit=1, bbox=bbox)
    assert inside["numberMatched"] == everything


def test_modern_gdal_pulls_a_whole_district(api: str, manifest: list[dict]) -> None:
    """A GDAL >= 3.8 (the one in pyogrio's wheel) pages by the server's advertised limit and
    gets the same parcels as the file delivered."""
    major, minor = (int(v) for v in pyogrio.__gdal_version_string__.split(".")[:2])
    assert (major, minor) >= (3, 8), pyogrio.__gdal_version_string__
    entry = manifest[0]
    frame = pyogrio.read_dataframe(f"OAPIF:{api}", layer=f"parcels-{entry['district_code']}",
                                   datetime_as_string=True)
    assert len(frame) == entry["feature_count"]
    assert frame["parcel_ref"].is_unique
    assert frame.geometry.notna().all() and frame.geometry.is_valid.all()
