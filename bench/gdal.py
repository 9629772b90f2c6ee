"""A whole district into GDAL: ``ogr2ogr -f GPKG out.gpkg OAPIF:<server> <collection>``.

What QGIS and GDAL users do to take a district home: the OAPIF driver pages through the
collection following ``next`` links. Three clients, each against every system side by
side (``CLIENTS``):

- Debian's GDAL 3.6 ``ogr2ogr`` as a user runs it, with its default paging (10 features a
  page: every server's per-request overhead, times the district's size / 10);
- the same with ``-oo PAGE_SIZE=1000`` (what a user who knows the option gets);
- a GDAL >= 3.8 (the one pyogrio's wheel bundles), reading the collection through
  ``pyogrio.raw.read("OAPIF:...")`` with its default paging, in a child process.

Timed end to end, repeated with the systems taking turns, median kept; the output is
checked: as many features, and as many distinct ids, as the district has.

GDAL's own share is measured too ("GDAL alone", per GDAL): the same district's features,
written once to a local GeoJSON file, then read by the same GDAL the same way with no
server at all. No server can make the OAPIF run faster than that, so it bounds every
ratio against a server behind this client.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg
from pyogrio import read_info
from pyogrio.raw import read as ogr_read

from bench.systems import RAW_DISTRICT_AFTER, RAW_DISTRICT_PAGE

PAGE_SIZE = 1000
# client -> (title, runs: at 10 features a page the default client takes minutes a
# district, so it runs once where the others repeat)
CLIENTS = {
    "gdal36_page1000": ("GDAL 3.6 ogr2ogr, -oo PAGE_SIZE=1000", None),
    "gdal36_default": ("GDAL 3.6 ogr2ogr, default paging", 1),
    "gdal_new": ("GDAL >= 3.8 (pyogrio's own), default paging", None),
}
DEFAULT_CLIENT = "gdal36_page1000"


@dataclass
class GdalResult:
    system: str
    collection: str
    expected: int
    client: str = DEFAULT_CLIENT
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


def client_once(result: GdalResult, base: str, timeout_s: float, work: Path) -> None:
    """One timed pull of ``result.collection`` by ``result.client``."""
    if result.client == "gdal_new":
        pyogrio_once(result, f"OAPIF:{base}", result.collection, timeout_s)
    else:
        ogr2ogr_once(result, base, timeout_s, work,
                     PAGE_SIZE if result.client == "gdal36_page1000" else None)


def ogr2ogr_once(result: GdalResult, base: str, timeout_s: float, work: Path,
                 page_size: int | None = PAGE_SIZE) -> None:
    """One timed ``ogr2ogr`` of ``result.collection``; appends the time or sets the status."""
    if result.status != "ok":
        return
    work.mkdir(parents=True, exist_ok=True)
    out = work / f"gdal-{result.system}.gpkg"
    env = {**os.environ, "GDAL_HTTP_TIMEOUT": str(int(timeout_s))}
    paging = ["-oo", f"PAGE_SIZE={page_size}"] if page_size else []
    _timed(result, ["ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{base}", result.collection,
                    *paging], out, timeout_s, env)


# The child that reads a dataset with pyogrio's GDAL and says what it got, as JSON.
_PYOGRIO_READ = """
import json, sys, time
from pyogrio import __gdal_version_string__ as version
from pyogrio.raw import read
t0 = time.perf_counter()
meta, fids, geoms, fields = read(sys.argv[1], layer=sys.argv[2] or None, return_fids=True)
seconds = time.perf_counter() - t0
names = list(meta["fields"])
ids = fields[names.index("id")].tolist() if "id" in names else fids.tolist()
print(json.dumps({"seconds": seconds, "features": len(geoms), "distinct": len(set(ids)),
                  "gdal": version}))
"""


def pyogrio_once(result: GdalResult, source: str, layer: str, timeout_s: float) -> None:
    """One timed read of ``layer`` of ``source`` (an OAPIF URL or a local file) by
    pyogrio's bundled GDAL in a child process (bounded by ``timeout_s``); the time is the
    child's own read, not its start-up."""
    if result.status != "ok":
        return
    env = {**os.environ, "GDAL_HTTP_TIMEOUT": str(int(timeout_s))}
    try:
        proc = subprocess.run([sys.executable, "-c", _PYOGRIO_READ, source, layer], env=env,
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        result.status, result.note = "failed", f"pyogrio did not finish in {timeout_s:.0f} s"
        return
    try:
        got = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        result.status = "failed"
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        result.note = f"pyogrio exit {proc.returncode}: {last[-300:]}"
        return
    result.features, result.distinct_ids = got["features"], got["distinct"]
    result.note = f"GDAL {got['gdal']}"
    if result.features != result.expected or result.distinct_ids != result.expected:
        result.status = "wrong"
        result.note += (f"; got {result.features} features ({result.distinct_ids} distinct "
                        f"ids), the district has {result.expected}")
        return
    result.runs_s.append(round(got["seconds"], 3))


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
# The local-file floor of each client: paging is a server's matter, so both 3.6 clients
# share ogr2ogr's; the newer GDAL reads the file as it read the collection.
ALONE_OF = {"gdal36_page1000": "gdal36_page1000", "gdal36_default": "gdal36_page1000",
            "gdal_new": "gdal_new"}


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
    """One timed read of the local GeoJSON by ``result.client``'s GDAL (``ogr2ogr -f
    GPKG`` for 3.6, pyogrio for the newer one): GDAL's work with no server."""
    if result.status != "ok":
        return
    if result.client == "gdal_new":
        pyogrio_once(result, str(source), "", timeout_s)
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
