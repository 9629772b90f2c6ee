"""How long a re-survey (đo đạc lại) of a large commune takes to load.

A commune of N parcels (a jittered grid of ~80 m² lots in Phúc Xá, 00001, in VN-2000 /
TM-3) is loaded, then re-surveyed: the same ground as a grid shifted by half a lot in
both directions and numbered afresh, so each new parcel overlaps four old ones. Timed:
the first load, the re-survey (overlap check, retirement of every old parcel, lineage of
about 4N links with shared areas) and, for comparison, the same re-survey file laid over
the commune as "changes" (refused in strict mode: every parcel overlaps).

    python -m bench.resurvey [--parcels 5000]   # results in docs/resurvey.md

Runs against ``BENCH_DATABASE_URL`` (a maintenance URL: it creates and drops the database
``lis_resurvey``) or the developer's embedded cluster (``lis db url --role admin``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import psycopg
from psycopg import sql
from shapely.geometry import box
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.machine import describe, load_average
from cadastre.loader import load_parcels
from cadastre.rules import Options
from landplatform.db import make_engine
from landplatform.migrate import upgrade
from lis import MIGRATIONS

DBNAME = "lis_resurvey"
TM3 = 5897
ORIGIN = (584_000.0, 2_326_500.0)  # TM-3 105°: inside Phúc Xá's district, Ba Đình
LOT = 9.0  # metres: ~81 m² lots, an urban ward's
DOCS = Path(__file__).resolve().parent.parent / "docs"


def grid(n: int, shift: float, seed: int) -> gpd.GeoDataFrame:
    """``n`` lots on a square grid, offset by ``shift`` lots, numbered 1.. on sheets of
    500 (stated areas exact to 0.1 m²)."""
    side = int(np.ceil(np.sqrt(n)))
    rows = []
    for k in range(n):
        i, j = divmod(k, side)
        x0, y0 = ORIGIN[0] + (j + shift) * LOT, ORIGIN[1] + (i + shift) * LOT
        geom = box(x0, y0, x0 + LOT, y0 + LOT)
        rows.append({"MaXa": "00001", "SoHieuToBanDo": 200 + int(seed) * 10 + k // 500,
                     "SoThuTuThua": k % 500 + 1, "DienTich": round(geom.area, 1),
                     "KyHieuMucDichSuDung": "ODT", "TyLe": 500, "geometry": geom})
    return gpd.GeoDataFrame(rows, crs=TM3)


def database() -> str:
    server = os.environ.get("BENCH_DATABASE_URL") or subprocess.run(
        [sys.executable, "-m", "lis.cli", "db", "url", "--role", "admin"], capture_output=True,
        text=True,
        check=True).stdout.strip()
    url = make_url(server)
    conninfo = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(DBNAME)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DBNAME)))
    return url.set(database=DBNAME).render_as_string(hide_password=False)


def timed(fn):  # noqa: ANN001, ANN201
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parcels", type=int, default=5000)
    args = parser.parse_args(argv)
    engine = make_engine(make_url(database()))
    upgrade(engine, MIGRATIONS)
    state = {**describe(Path(tempfile.gettempdir())), "load_1m": load_average()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        first, resurvey = Path(tmp) / "commune.gpkg", Path(tmp) / "resurvey.gpkg"
        grid(args.parcels, 0.0, 0).to_file(first, layer="thua_dat")
        grid(args.parcels, 0.5, 1).to_file(resurvey, layer="thua_dat")
        loaded, t_first = timed(lambda: load_parcels(engine, first))
        refused, t_refused = timed(lambda: load_parcels(engine, resurvey))
        done, t_resurvey = timed(lambda: load_parcels(
            engine, resurvey, options=Options(delivery="resurvey")))
    for step in (loaded, refused, done):
        for line in step.detail_lines(limit=3, repair_limit=0):
            print(line, file=sys.stderr)
    with engine.connect() as conn:
        links = conn.execute(text("SELECT count(*) FROM cadastre.parcel_lineage")).scalar()
    engine.dispose()
    result = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": state,
        "parcels": args.parcels,
        "first_load": {"status": loaded.status, "seconds": round(t_first, 2)},
        "laid_over_as_changes": {"status": refused.status, "rejected": refused.rejected,
                                 "seconds": round(t_refused, 2)},
        "resurvey": {"status": done.status, "inserted": done.inserted,
                     "retired": done.retired, "lineage": links,
                     "seconds": round(t_resurvey, 2)},
    }
    (DOCS / "resurvey.json").write_text(json.dumps(result, indent=1) + "\n",
                                        encoding="utf-8")
    rows = [(f"first load of the commune ({args.parcels:,} parcels)", loaded.status,
             t_first),
            ("the re-survey laid over it as changed parcels",
             f"{refused.status}: {refused.rejected:,} parcels overlap", t_refused),
            ("the re-survey (`--delivery resurvey`)",
             f"{done.status}: {done.inserted:,} new, {done.retired:,} retired, {links:,} "
             "links with shared areas", t_resurvey)]
    table = "\n".join(f"| {a} | {b} | {c:.2f} |" for a, b, c in rows)
    (DOCS / "resurvey.md").write_text(
        f"# Re-survey of a commune: load time\n\n`python -m bench.resurvey --parcels "
        f"{args.parcels}`, {result['at']}, load average {state['load_1m']} at the start. "
        f"One commune of {args.parcels:,} parcels (~81 m² lots), then its re-survey: the "
        "same ground as a grid shifted by half a lot, numbered afresh, so each new parcel "
        "overlaps four old ones.\n\n| step | result | seconds |\n|---|---|---:|\n"
        f"{table}\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
    return 0 if done.status == "loaded" else 1


if __name__ == "__main__":
    sys.exit(main())
