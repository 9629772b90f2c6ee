"""``/collections`` at national scale: every pre-2025 district and every 2025 province
declared, in a throwaway database; timed through the real server.

Why declared rather than loaded: the listing reads only the summary views
(``publish.districts``, ``publish.current_provinces``), never parcels, so a summary row per
district (with its extent) and per district-and-2025-province is what a national
deployment lists. Run twice, without and with the province rows, so the cost of the
per-province collections is its own figure.

    python -m bench.collections [--requests 20] [--work var/bench-collections]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import httpx

from bench.database import drop_database, open_database
from bench.servers import platform_server

PROJECT = Path(__file__).resolve().parent.parent
# Districts with no known extent get a box of a grid over Vietnam's land box: the listing
# only carries the numbers, their place does not change its cost.
GRID_BOX = (102.2, 8.6, 109.4, 23.3)
START_TIMEOUT_S = 900.0

DECLARE_DISTRICTS = """
INSERT INTO cadastre.district_summary
       (district_code, parcel_count, min_lon, min_lat, max_lon, max_lat, updated_at,
        first_valid_from)
SELECT d.code, 10000 + row_number() OVER (ORDER BY d.code),
       coalesce(ST_XMin(d.geom), %(x0)s + (n %% 40) * 0.18),
       coalesce(ST_YMin(d.geom), %(y0)s + (n / 40) * 0.8),
       coalesce(ST_XMax(d.geom), %(x0)s + (n %% 40) * 0.18 + 0.15),
       coalesce(ST_YMax(d.geom), %(y0)s + (n / 40) * 0.8 + 0.6), now(), now()
  FROM (SELECT u.*, (row_number() OVER (ORDER BY u.code))::int AS n
          FROM admin.admin_unit u
         WHERE u.level = 'district' AND u.valid_to = DATE '2025-06-30'
           AND EXISTS (SELECT 1 FROM admin.admin_unit c WHERE c.level = 'commune'
                        AND c.parent_code = u.code AND c.valid_to = u.valid_to)) d
"""
# Each district's parcels split between the 2025 provinces its communes went into.
DECLARE_PROVINCES = """
INSERT INTO cadastre.district_province_summary
SELECT s.district_code, x.province, s.parcel_count / x.n, s.min_lon, s.min_lat, s.max_lon,
       s.max_lat, s.first_valid_from
  FROM cadastre.district_summary s
  CROSS JOIN LATERAL (
        SELECT m.new_province_code AS province, count(*) OVER () AS n
          FROM admin.admin_unit c JOIN admin.admin_unit_map m ON m.old_code = c.code
         WHERE c.level = 'commune' AND c.parent_code = s.district_code
           AND c.valid_to = DATE '2025-06-30'
         GROUP BY m.new_province_code) x
"""


def measure(base: str, path: str, requests: int) -> dict:
    """Median and worst of ``requests`` GETs after one warm-up; the body's size."""
    with httpx.Client(timeout=120) as client:
        first = client.get(base + path)
        first.raise_for_status()
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            r = client.get(base + path)
            times.append(time.perf_counter() - started)
            r.raise_for_status()
    body = first.json() if path.endswith("f=json") else None
    return {"path": path, "median_s": round(statistics.median(times), 4),
            "max_s": round(max(times), 4), "bytes": len(first.content),
            "collections": len(body["collections"]) if body and "collections" in body
            else None}


def run(work: Path, requests: int) -> dict:
    db = open_database(work / "pg", fresh=True, dbname="lis_collections")
    results = {}
    try:
        with db.connect(autocommit=True) as conn:
            conn.execute(DECLARE_DISTRICTS, {"x0": GRID_BOX[0], "y0": GRID_BOX[1]})
            districts = conn.execute("SELECT count(*) FROM publish.districts").fetchone()[0]
        for label in ("districts only", "districts + 2025 provinces"):
            if label != "districts only":
                with db.connect(autocommit=True) as conn:
                    conn.execute(DECLARE_PROVINCES)
            provinces = 0
            with db.connect() as conn:
                provinces = conn.execute(
                    "SELECT count(*) FROM publish.current_provinces").fetchone()[0]
            server = platform_server(db, work)
            # one worker: each worker builds the whole config and OpenAPI at start
            server.env["LIS_WORKERS"] = "1"
            started = time.perf_counter()
            server.start(timeout_s=START_TIMEOUT_S)
            start_s = time.perf_counter() - started
            try:
                results[label] = {
                    "districts": districts, "provinces": provinces,
                    "server_start_s": round(start_s, 2),
                    "collections_json": measure(server.base, "/collections?f=json", requests),
                    "collections_html": measure(server.base, "/collections?f=html", requests),
                    "parcels_p01": measure(server.base, "/collections/parcels-p01?f=json",
                                           requests) if provinces else None,
                }
            finally:
                server.stop()
    finally:
        drop_database(db)
        db.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.collections")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--work", type=Path, default=PROJECT / "var" / "bench-collections")
    parser.add_argument("--out", type=Path, default=PROJECT / "docs" / "collections.json")
    args = parser.parse_args(argv)
    results = run(args.work, max(1, min(args.requests, 200)))
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
