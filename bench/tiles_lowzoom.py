"""Low-zoom tiles of the parcels collection: every tile z0-z11 over the data, cold and warm.

    python -m bench.tiles_lowzoom                      # own cluster, samples loaded
    python -m bench.tiles_lowzoom --parcels 200000     # own cluster, bench data (54 districts)
    python -m bench.tiles_lowzoom --url http://127.0.0.1:8000   # a running platform

Below z12 the parcels collection's tiles hold the cadastre's district and commune summary
shapes (migration 0016). This requests, for each zoom 0-11, every WebMercatorQuad tile of
the national ``parcels`` collection that meets a district's extent (the union of the
``parcels-<d>`` tilesets' limits), first cold (nothing in the server's tile cache; each
tile is built by PostGIS), then warm (the same tiles again: the cache), one request at a
time with ``Accept-Encoding: gzip``. Per zoom: tiles, p50/p95/max time, max compressed and
uncompressed size, against the budget (500 KB compressed a tile). With its own
database it also times ``cadastre.refresh_parcel_summary`` over every district (what a
load of all of them adds). Results: docs/tiles-lowzoom.md and docs/tiles-lowzoom.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench import data as bench_data
from bench import database, load, machine
from bench.loadtest import load_samples
from bench.servers import platform_server

PROJECT = Path(__file__).resolve().parent.parent
DOCS = PROJECT / "docs"
TMS = "WebMercatorQuad"
LOW_ZOOMS = range(0, 12)
BUDGET_BYTES = 500 * 1024
BUDGET_MS = 1000.0  # a cold tile; the warm ones are cache hits
MAX_TILES = 20000  # bound on the requests of one pass


def log(msg: str) -> None:
    print(f"[tiles-lowzoom {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def tiles_over_data(client: httpx.Client, base: str) -> dict[int, list[tuple[int, int]]]:
    """Per zoom, the (col, row) of every tile meeting a district's extent."""
    collections = client.get(f"{base}/collections", params={"f": "json"}).json()
    districts = [c["id"] for c in collections["collections"]
                 if c["id"].startswith("parcels-")]
    wanted: dict[int, set[tuple[int, int]]] = {z: set() for z in LOW_ZOOMS}
    for cid in districts:
        meta = client.get(f"{base}/collections/{cid}/tiles/{TMS}").json()
        for lim in meta["tileMatrixSetLimits"]:
            z = int(lim["tileMatrix"])
            if z in wanted:
                wanted[z] |= {(c, r) for c in range(lim["minTileCol"], lim["maxTileCol"] + 1)
                              for r in range(lim["minTileRow"], lim["maxTileRow"] + 1)}
    return {z: sorted(v) for z, v in wanted.items()}


def one_pass(client: httpx.Client, base: str, tiles: dict[int, list[tuple[int, int]]]
             ) -> dict[int, list[dict]]:
    """Request every tile once: status, ms, compressed and plain bytes, per zoom."""
    rows: dict[int, list[dict]] = {}
    budget = MAX_TILES
    for z, cells in tiles.items():
        rows[z] = []
        for col, row in cells:
            if budget <= 0:
                break
            budget -= 1
            t0 = time.perf_counter()
            with client.stream("GET", f"{base}/collections/parcels/tiles/{TMS}/{z}/{row}/{col}",
                               headers={"Accept-Encoding": "gzip"}) as r:
                body = b"".join(r.iter_raw())
            ms = (time.perf_counter() - t0) * 1000
            plain = gzip.decompress(body) if r.headers.get("content-encoding") == "gzip" \
                else body
            rows[z].append({"col": col, "row": row, "status": r.status_code, "ms": ms,
                            "bytes": len(body), "plain_bytes": len(plain)})
    return rows


def summarise(rows: dict[int, list[dict]]) -> list[dict]:
    out = []
    for z, cells in rows.items():
        times = [c["ms"] for c in cells]
        full = [c for c in cells if c["status"] == 200]
        out.append({"zoom": z, "tiles": len(cells), "with_data": len(full),
                    "errors": sum(c["status"] not in (200, 204) for c in cells),
                    "p50_ms": round(pct(times, 50), 1), "p95_ms": round(pct(times, 95), 1),
                    "max_ms": round(max(times, default=float("nan")), 1),
                    "max_bytes": max((c["bytes"] for c in full), default=0),
                    "max_plain_bytes": max((c["plain_bytes"] for c in full), default=0)})
    return out


def measure(base: str) -> dict:
    with httpx.Client(timeout=120) as client:
        health = client.get(f"{base}/health").json()
        tiles = tiles_over_data(client, base)
        log(f"{sum(map(len, tiles.values()))} tiles over the data at z0-z11")
        cold = one_pass(client, base, tiles)
        warm = one_pass(client, base, tiles)
        parcels = client.get(f"{base}/collections/parcels/items",
                             params={"resulttype": "hits"}).json()["numberMatched"]
        districts = [c for c in client.get(f"{base}/collections",
                                           params={"f": "json"}).json()["collections"]
                     if c["id"].startswith("parcels-")]
    return {"cold": summarise(cold), "warm": summarise(warm), "parcels": parcels,
            "districts": len(districts), "schema": health.get("schema")}


def time_refresh(db: database.BenchDB) -> float:
    """Seconds ``cadastre.refresh_parcel_summary(NULL)`` takes (every district at once)."""
    with db.connect() as conn:
        t0 = time.perf_counter()
        conn.execute("SELECT cadastre.refresh_parcel_summary(NULL)")
        return time.perf_counter() - t0


def report(result: dict) -> str:
    worst = max((r["max_bytes"] for r in result["cold"]), default=0)
    slowest = max((r["max_ms"] for r in result["cold"]), default=0)
    lines = [
        "# Low-zoom parcel tiles (z0-z11)",
        "",
        f"Measured {result['when']} by `python -m bench.tiles_lowzoom` on "
        f"{result['machine'].get('cpu', '?')} (load average before: "
        f"{', '.join(f'{x:.2f}' for x in result['load_before'])}), over "
        f"{result['parcels']:,} parcels in {result['districts']} districts "
        f"({result['data']}).",
        "",
        "Below z12 the `parcels` collection's tiles hold the cadastre's summary shapes: "
        "districts at z0-z8, communes at z9-z11, with parcel count, area and dominant land "
        "use (`cadastre.parcel_summary`, migration 0016, refreshed by every load). Every "
        "WebMercatorQuad tile of the national collection that meets a district's extent is "
        "requested once cold (built by PostGIS) and once warm (the server's tile cache), "
        "one request at a time, gzip accepted. Sizes are as sent (gzip) and decoded.",
        "",
        f"Budget: {BUDGET_BYTES // 1024} KB compressed a tile: the largest was "
        f"{worst / 1024:.1f} KB ({'within' if worst <= BUDGET_BYTES else 'OVER'}); the "
        f"slowest cold tile {slowest:.0f} ms (target {BUDGET_MS:.0f} ms: "
        f"{'met' if slowest <= BUDGET_MS else 'missed'}).",
        "",
    ]
    if "refresh_all_s" in result:
        lines += [f"Recomputing every district's and commune's summary at once "
                  f"(`cadastre.refresh_parcel_summary(NULL)`) took "
                  f"{result['refresh_all_s']:.2f} s; a load pays this for the districts it "
                  "touches only.", ""]
    for label in ("cold", "warm"):
        lines += [f"## {label.capitalize()}", "",
                  "| zoom | tiles | with data | p50 ms | p95 ms | max ms | max KB (gzip) "
                  "| max KB (plain) |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in result[label]:
            lines.append(f"| {r['zoom']} | {r['tiles']} | {r['with_data']} | {r['p50_ms']} "
                         f"| {r['p95_ms']} | {r['max_ms']} | {r['max_bytes'] / 1024:.1f} "
                         f"| {r['max_plain_bytes'] / 1024:.1f} |")
        lines.append("")
    lines += ["Errors (a status other than 200/204): "
              f"{sum(r['errors'] for r in result['cold'] + result['warm'])}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running platform (else: own cluster + samples)")
    parser.add_argument("--parcels", type=int, default=0,
                        help="own cluster with this many generated bench parcels "
                             "(bench.data, 54 districts) instead of the samples")
    parser.add_argument("--work", type=Path, default=PROJECT / "var" / "bench")
    parser.add_argument("--out", type=Path, default=DOCS / "tiles-lowzoom.md")
    args = parser.parse_args(argv)
    load_before = machine.load_average()
    server = db = None
    args.work.mkdir(parents=True, exist_ok=True)
    try:
        if args.url:
            base, data = args.url.rstrip("/"), f"the platform at {args.url}"
        else:
            db = database.open_database(args.work, fresh=True, dbname="lis_tiles")
            if args.parcels:
                dataset = bench_data.generate(args.work / "data", args.parcels, None, log=log)
                log(f"loading {args.parcels:,} bench parcels")
                # the generator's stated areas are often outside the mapping tolerance
                # of any sheet scale (large synthetic parcels): quarantine loads the rest
                seconds, _, rc, tail = load.run_measured(
                    [sys.executable, "-m", "lis.cli", "load", "parcels", str(dataset.path),
                     "--quiet", "--scale", "10000", "--quarantine"],
                    {**os.environ, "DATABASE_URL": db.sqlalchemy_url}, 3600,
                    args.work / "load-etl.log")
                if rc != 0:
                    raise RuntimeError(f"lis load parcels failed ({rc}):\n{tail}")
                data = (f"generated bench parcels (`bench.data`, {args.parcels:,} written; "
                        f"`lis load parcels --scale 10000 --quarantine` in {seconds:.1f} s "
                        "kept those within the area tolerance)")
            else:
                log("loading the samples")
                load_samples(db, args.work)
                data = "the sample deliveries (`lis load samples`)"
            refresh_s = time_refresh(db)
            server = platform_server(db, args.work)
            server.start()
            base = server.base
        result = measure(base)
        if db is not None:
            result["refresh_all_s"] = refresh_s
    finally:
        if server is not None:
            server.stop()
        if db is not None:
            database.drop_database(db)
    result.update(when=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), data=data,
                  machine=machine.describe(args.work), load_before=load_before)
    args.out.write_text(report(result), encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str),
                                             encoding="utf-8")
    log(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
