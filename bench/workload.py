"""What is asked: fixed, seeded request lists drawn from the loaded data, shared by all.

Every system gets the same bboxes, ids, filters, districts and tiles, in the same order;
only the URL spelling differs (``bench.systems``). Drawing them from the database after
the load (ordered by a seeded hash, never ``random()``) keeps them identical across
systems and across runs of the same size.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field

from bench.database import BenchDB

SEED = "lis-bench-2025"
ITEMS_LIMIT = 1000  # "items of 1,000 parcels in a bbox"; also the district page size
CQL_LIMIT = 100
TILE_ZOOMS = (12, 13, 14, 15, 16)
N_IDS = 500
N_BBOX_CANDIDATES = 60
N_BBOXES = 30
N_TILE_POINTS = 8
# Seeded parcel points for the cold tiles, one zoom each in turn: enough distinct tiles that
# no cell of a run asks one twice (10 s at several hundred tiles/s, per client count).
N_COLD_POINTS = 120_000
N_FILTERS = 20
BBOX_TARGET = 1400  # parcels aimed for per bbox, so that >= 1,000 intersect
BBOX_GROW = 1.35
BBOX_MAX_GROW_STEPS = 6


@dataclass
class CqlFilter:
    district: str
    min_area: float

    def cql2_text(self) -> str:
        return (f"district_code='{self.district}' AND land_use='ODT' "
                f"AND area_m2>{self.min_area}")


@dataclass
class Workload:
    districts: dict[str, int]  # code -> parcel count
    gdal_district: str
    ids: list[int] = field(default_factory=list)
    bboxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    filters: list[CqlFilter] = field(default_factory=list)
    tiles: list[tuple[int, int, int]] = field(default_factory=list)  # (z, x, y)
    cold_tiles: list[tuple[int, int, int]] = field(default_factory=list)  # distinct
    page_districts: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"districts": len(self.districts), "gdal_district": self.gdal_district,
                "gdal_district_parcels": self.districts[self.gdal_district],
                "ids": len(self.ids), "bboxes": self.bboxes,
                "filters": [asdict(f) for f in self.filters], "tiles": self.tiles,
                "cold_tiles": len(self.cold_tiles),
                "cold_tile_zooms": {z: sum(t[0] == z for t in self.cold_tiles)
                                    for z in TILE_ZOOMS},
                "page_districts": self.page_districts}


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """WebMercatorQuad (z, x, y) of a point (y counted from the north, as XYZ/OGC)."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    rad = math.radians(lat)
    y = int((1.0 - math.asinh(math.tan(rad)) / math.pi) / 2.0 * n)
    return z, min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def _bboxes(conn, extents: dict[str, tuple]) -> list[tuple[float, float, float, float]]:  # noqa: ANN001
    """Squares around seeded parcel centres, grown until >= ITEMS_LIMIT parcels intersect.

    Centres come from districts with known (real) extents, where neighbours touch; the
    starting side follows the district's parcel density so most need no growing.
    """
    rows = conn.execute(
        "SELECT p.district_code, ST_X(c) AS x, ST_Y(c) AS y "
        "  FROM (SELECT district_code, ST_PointOnSurface(geom) AS c, id "
        "          FROM publish.parcels WHERE province_code IN ('01', '48')) p "
        " ORDER BY md5(p.id::text || %s) LIMIT %s", (SEED, N_BBOX_CANDIDATES)).fetchall()
    out: list[tuple[float, float, float, float]] = []
    for district, x, y in rows:
        count, x0, y0, x1, y1 = extents[district]
        density = count / max((x1 - x0) * (y1 - y0), 1e-9)
        half = math.sqrt(BBOX_TARGET / density) / 2
        for _ in range(BBOX_MAX_GROW_STEPS):
            box = (round(x - half, 6), round(y - half, 6), round(x + half, 6),
                   round(y + half, 6))
            n = conn.execute("SELECT count(*) FROM publish.parcels WHERE "
                             "ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
                             box).fetchone()[0]
            if n >= ITEMS_LIMIT:
                out.append(box)
                break
            half *= BBOX_GROW
        if len(out) >= N_BBOXES:
            break
    return out


def build(db: BenchDB) -> Workload:
    with db.connect() as conn:
        rows = conn.execute("SELECT district_code, parcel_count, min_lon, min_lat, max_lon, "
                            "max_lat FROM publish.districts ORDER BY district_code").fetchall()
        extents = {r[0]: tuple(r[1:]) for r in rows}
        districts = {r[0]: int(r[1]) for r in rows}
        work = Workload(districts, gdal_district=rows[0][0])
        work.ids = [r[0] for r in conn.execute(
            "SELECT id FROM publish.parcels ORDER BY md5(id::text || %s) LIMIT %s",
            (SEED, N_IDS))]
        work.bboxes = _bboxes(conn, extents)
        work.page_districts = sorted(districts, key=hash_key)
        for d in work.page_districts[:N_FILTERS]:
            median = conn.execute(
                "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY area_m2) "
                "  FROM publish.parcels WHERE district_code = %s AND land_use = 'ODT'",
                (d,)).fetchone()[0]
            if median is not None:
                work.filters.append(CqlFilter(d, float(median)))
        points = conn.execute(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c, id "
            "  FROM publish.parcels ORDER BY md5(id::text || %s) LIMIT %s) p",
            (SEED + "-cold", N_COLD_POINTS)).fetchall()
    for x0, y0, x1, y1 in work.bboxes[:N_TILE_POINTS]:
        for z in TILE_ZOOMS:
            work.tiles.append(tile_of((x0 + x1) / 2, (y0 + y1) / 2, z))
    work.cold_tiles = cold_tiles(points, set(work.tiles))
    return work


def cold_tiles(points: list[tuple[float, float]], warm: set[tuple[int, int, int]]
               ) -> list[tuple[int, int, int]]:
    """Distinct tiles where parcels are, none of the warm set, zooms taken in turn (the
    same list, so the same zoom mix, for every system); low zooms run out first, as they
    would for a real map's first visitors."""
    seen = set(warm)
    out: list[tuple[int, int, int]] = []
    for k, (x, y) in enumerate(points):
        tile = tile_of(x, y, TILE_ZOOMS[k % len(TILE_ZOOMS)])
        if tile not in seen:
            seen.add(tile)
            out.append(tile)
    return out


def hash_key(text: str) -> str:
    """A stable shuffle key (Python's hash() is salted per process)."""
    return hashlib.md5((text + SEED).encode()).hexdigest()
