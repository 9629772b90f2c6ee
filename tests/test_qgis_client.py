"""QGIS itself (Debian's PyQGIS, headless, its own OAPIF provider) against the server.

A land officer adds a district's parcels as an OGC API - Features layer: QGIS must see every
parcel, the same parcels in a bbox and of one land use as the server answers, and draw
them. ``tests/qgis_client.py`` runs inside QGIS's Python; this test asks the server itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from support import PROJECT

SYSTEM_PY = "/usr/bin/python3"


def _has_qgis() -> bool:
    if not shutil.which(SYSTEM_PY):
        return False
    probe = subprocess.run([SYSTEM_PY, "-c", "import qgis.core"], capture_output=True,
                           timeout=60)
    return probe.returncode == 0


def _server_refs(api: str, collection: str, **params: str) -> set[str]:
    """Every parcel_ref the server answers, following next links."""
    refs: set[str] = set()
    url = f"{api}/collections/{collection}/items"
    query: dict | None = {"limit": "5000", **params}
    with httpx.Client(timeout=60) as client:
        for _ in range(100):  # bounded: 100 pages of 5,000
            page = client.get(url, params=query).raise_for_status().json()
            refs |= {f["properties"]["parcel_ref"] for f in page["features"]}
            nxt = next((lk["href"] for lk in page["links"] if lk["rel"] == "next"), None)
            if nxt is None:
                return refs
            url, query = nxt, None  # the next link carries the query
    raise AssertionError("more than 100 pages")


def test_qgis_loads_counts_filters_and_draws_a_district(api: str, manifest: list[dict],
                                                        tmp_path: Path) -> None:
    if not _has_qgis():
        if os.environ.get("CI"):
            pytest.fail("PyQGIS is missing: scripts/bootstrap.sh --tests installs python3-qgis")
        pytest.skip("PyQGIS (Debian python3-qgis) not installed")
    entry = manifest[0]
    collection = f"parcels-{entry['district_code']}"
    meta = httpx.get(f"{api}/collections/{collection}", timeout=30).json()
    minx, miny, maxx, maxy = meta["extent"]["spatial"]["bbox"][0]
    # a box around the middle of the district, a tenth of its width
    cx, cy, dx, dy = (minx + maxx) / 2, (miny + maxy) / 2, (maxx - minx) / 20, (maxy - miny) / 20
    bbox = f"{cx - dx},{cy - dy},{cx + dx},{cy + dy}"
    png = tmp_path / "district.png"
    proc = subprocess.run([SYSTEM_PY, str(PROJECT / "tests" / "qgis_client.py"), api, collection,
                           bbox, "ODT", str(png)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen",
                               "XDG_RUNTIME_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["valid"], seen
    assert seen["crs"] == "EPSG:4326"

    assert seen["count"] == seen["reported_count"] == entry["feature_count"]
    assert set(seen["ids"]) == _server_refs(api, collection)
    in_bbox = _server_refs(api, collection, bbox=bbox)
    assert in_bbox and set(seen["bbox"]) == in_bbox
    of_use = _server_refs(api, collection, filter="land_use = 'ODT'")
    assert of_use and set(seen["land_use"]) == of_use

    assert png.stat().st_size > 1000
    # the district fills most of its own extent: most sampled pixels are drawn
    assert seen["drawn_pixels"] > seen["sampled_pixels"] // 4, seen["drawn_pixels"]
