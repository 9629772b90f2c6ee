"""A whole district into GDAL: ``ogr2ogr -f GPKG out.gpkg OAPIF:<server> <collection>``.

What QGIS and GDAL users do to take a district home: the OAPIF driver pages through the
collection following ``next`` links. GDAL 3.6 asks for 10 features a page unless told
otherwise, which would make every server look like its per-request overhead; all servers
get ``-oo PAGE_SIZE=1000`` (the same for all). Timed end to end, repeated with the systems
taking turns, median kept; the output is checked: as many features, and as many distinct
ids, as the district has.

GDAL's own share is measured too ("GDAL alone"): the same district's features, written
once to a local GeoJSON file, then converted by the same ``ogr2ogr -f GPKG`` with no
server at all. No server can make the OAPIF run faster than that, so it bounds every
ratio against a server behind this client.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg
from pyogrio import read_info
from pyogrio.raw import read as ogr_read

from bench.systems import RAW_DISTRICT_AFTER, RAW_DISTRICT_PAGE

PAGE_SIZE = 1000


@dataclass
class GdalResult:
    system: str
    collection: str
    expected: int
    status: str = "ok"  # ok | wrong | failed | n/a
    note: str = ""
    runs_s: list[float] = field(default_factory=list)
    features: int | None = None
    distinct_ids: int | None = None

    @property
    def median_s(self) -> float | None:
        return round(statistics.median(self.runs_s), 3) if self.runs_s else None

    def to_json(self) -> dict:
        return {**asdict(self), "median_s": self.median_s}


def _count(path: Path) -> tuple[int, int | None]:
    info = read_info(path)
    fields = list(info["fields"])
    if "id" not in fields:
        return int(info["features"]), None
    _meta, _fids, _geom, (ids,) = ogr_read(path, columns=["id"], read_geometry=False)
    return int(info["features"]), len(set(ids.tolist()))


def ogr2ogr_once(result: GdalResult, base: str, timeout_s: float, work: Path) -> None:
    """One timed ``ogr2ogr`` of ``result.collection``; appends the time or sets the status."""
    if result.status != "ok":
        return
    work.mkdir(parents=True, exist_ok=True)
    out = work / f"gdal-{result.system}.gpkg"
    env = {**os.environ, "GDAL_HTTP_TIMEOUT": str(int(timeout_s))}
    _timed(result, ["ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{base}", result.collection,
                    "-oo", f"PAGE_SIZE={PAGE_SIZE}"], out, timeout_s, env)


def _timed(result: GdalResult, argv: list[str], out: Path, timeout_s: float,
           env: dict[str, str] | None = None) -> None:
    """Run ``argv`` (an ogr2ogr writing ``out``), timed; check the GeoPackage it wrote has
    the district's features (and distinct ids, when it kept an id field); then append the
    time, or set the result's status and note."""
    out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        result.status, result.note = "failed", f"ogr2ogr did not finish in {timeout_s:.0f} s"
        return
    seconds = time.perf_counter() - t0
    if proc.returncode != 0 or not out.exists():
        result.status = "failed"
        result.note = f"ogr2ogr exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
        return
    result.features, result.distinct_ids = _count(out)
    out.unlink(missing_ok=True)
    if result.features != result.expected or result.distinct_ids not in (None, result.expected):
        result.status = "wrong"
        result.note = (f"got {result.features} features ({result.distinct_ids} distinct ids), "
                       f"the district has {result.expected}")
        return
    result.runs_s.append(round(seconds, 3))


GDAL_ALONE = "gdal_alone"


def gdal_alone_file(db_ogr: str, password: str, district: str, work: Path,
                    timeout_s: float) -> tuple[Path | None, str]:
    """Write the district's published features to ``work/district-<d>.geojson`` (once,
    not timed), as the platform would send them: id, every property, 8 decimals."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"district-{district}.geojson"
    path.unlink(missing_ok=True)
    sql = f"SELECT * FROM publish.parcels WHERE district_code = '{int(district):03d}'"
    argv = ["ogr2ogr", "-f", "GeoJSON", str(path), db_ogr, "-sql", sql, "-nln", "parcels",
            "-nlt", "MULTIPOLYGON",
            "-lco", "ID_FIELD=id", "-lco", "COORDINATE_PRECISION=8"]
    env = {**os.environ, "PGPASSWORD": password}
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None, f"writing the GeoJSON took over {timeout_s:.0f} s"
    if proc.returncode != 0 or not path.exists():
        return None, f"ogr2ogr exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
    return path, ""


def gdal_alone_once(result: GdalResult, source: Path, timeout_s: float, work: Path) -> None:
    """One timed ``ogr2ogr -f GPKG`` of the local GeoJSON: GDAL's work with no server."""
    if result.status != "ok":
        return
    out = work / "gdal-alone.gpkg"
    _timed(result, ["ogr2ogr", "-f", "GPKG", str(out), str(source)], out, timeout_s)


def raw_once(result: GdalResult, conninfo: dict, district: str) -> None:
    """The floor: the same district as GeoJSON pages of 1,000 by key, over psycopg."""
    if result.status != "ok":
        return
    max_pages = result.expected // PAGE_SIZE + 2
    total = 0
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        t0 = time.perf_counter()
        last = None
        for _page in range(max_pages):
            if last is None:
                row = conn.execute(RAW_DISTRICT_PAGE, (district,)).fetchone()
            else:
                row = conn.execute(RAW_DISTRICT_AFTER, (district, last)).fetchone()
            _body, n, last = row
            total += n
            if last is None or n < PAGE_SIZE:
                break
        seconds = time.perf_counter() - t0
    result.features = total
    if total != result.expected:
        result.status = "wrong"
        result.note = f"paged {total} features, the district has {result.expected}"
        return
    result.runs_s.append(round(seconds, 3))
