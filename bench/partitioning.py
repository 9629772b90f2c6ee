"""``python -m bench.partitioning``: the same data, plain tables against partitioned ones.

One cluster, two databases, the same code: ``lis_part_plain`` migrated and then taken back
below cadastre migration 0020 (plain tables, as before it), ``lis_part_partitioned`` at
every head. Each loads the benchmark's GeoPackage (``bench.data``; ``--quarantine``, so a
parcel the current rules reject is left out of both alike); then a ``lis serve`` per
database answers the same requests, the two taking turns cell by cell: a whole district
paged through the features path as GDAL pages it (1,000 per page, following ``next``),
the first page of a district, one parcel by id in the national collection and in a
district's. Last, migration 0020 converts the plain database in place, timed. Prints a
Markdown table (for docs/SCALING.md) and writes the numbers as JSON beside the work dir.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

from bench import data
from bench.database import free_port
from bench.servers import Server
from landplatform.db import make_engine
from landplatform.migrate import downgrade, upgrade
from landplatform.pgcluster import EmbeddedCluster
from lis import MIGRATIONS

LAYOUTS = ("plain", "partitioned")
PARCEL_TABLES = ("cadastre.parcel", "cadastre.parcel_history", "cadastre.parcel_land_use",
                 "cadastre.parcel_event", "cadastre.parcel_lineage",
                 "restricted.land_right", "restricted.encumbrance")


def log(message: str) -> None:
    print(f"[partitioning {time.strftime('%H:%M:%S')}] {message}", flush=True)


def sizes(conninfo: dict) -> dict[str, int]:
    """Bytes of each large table with its indexes (a partitioned one: its partitions)."""
    with psycopg.connect(**conninfo) as conn:
        return {t: int(conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) "
            "FROM pg_partition_tree(%s::regclass) WHERE isleaf", (t,)).fetchone()[0]
            or conn.execute("SELECT pg_total_relation_size(%s::regclass)", (t,)).fetchone()[0])
            for t in PARCEL_TABLES}


def timed(client: httpx.Client, url: str, params: dict | None = None) -> float:
    started = time.perf_counter()
    r = client.get(url, params=params)
    r.raise_for_status()
    return time.perf_counter() - started


def pull(client: httpx.Client, base: str, district: str) -> tuple[float, int]:
    """A whole district, page after page (what ``ogr2ogr OAPIF:`` does): seconds, features."""
    url: str | None = f"{base}/collections/parcels-{district}/items?limit=1000&f=json"
    started, features = time.perf_counter(), 0
    for _ in range(10_000):  # bounded: 10M parcels at 1,000 a page
        if url is None:
            break
        page = client.get(url).raise_for_status().json()
        features += len(page["features"])
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    return time.perf_counter() - started, features


def _prepare(cluster: EmbeddedCluster, url, layout: str, env: dict[str, str],  # noqa: ANN001
             path: Path) -> dict:
    """A fresh database of ``layout``, loaded with ``path``: its figures."""
    name = url.database
    with psycopg.connect(**cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(url)
    started = time.perf_counter()
    upgrade(engine, MIGRATIONS)
    migrate_s = time.perf_counter() - started
    if layout == "plain":
        downgrade(engine, MIGRATIONS, "0012")
    engine.dispose()
    log(f"{layout}: migrated a fresh database in {migrate_s:.1f} s (every head); loading")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lis.cli", "load", "parcels", str(path),
                           "--quarantine", "--quiet"], env=env, capture_output=True,
                          text=True, timeout=7200)
    load_s = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"load failed: {proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    conninfo = cluster.conninfo(name)
    with psycopg.connect(**conninfo) as conn:
        rows = conn.execute("SELECT count(*) FROM cadastre.parcel").fetchone()[0]
    log(f"{layout}: loaded {rows:,} parcels in {load_s:.1f} s")
    return {"load_s": load_s, "rows": rows, "bytes": sizes(conninfo), "cells": {}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.partitioning")
    parser.add_argument("--parcels", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=Path("var/bench-partitioning"))
    parser.add_argument("--reps", type=int, default=3, help="turns of every cell")
    parser.add_argument("--requests", type=int, default=100, help="requests per p50 cell")
    args = parser.parse_args(argv)
    work = args.work.absolute()
    work.mkdir(parents=True, exist_ok=True)
    dataset = data.generate(work / "data", args.parcels, log=log)
    log(f"data: {dataset.path.name}, {dataset.parcels:,} parcels, "
        f"{len(dataset.districts)} districts ({'reused' if dataset.reused else 'generated'})")
    cluster = EmbeddedCluster(work / "pg", free_port())
    if cluster.is_running():
        cluster.port = cluster.running_port() or cluster.port
    cluster.ensure_running()
    admin = make_url(cluster.url)
    result: dict = {"parcels": args.parcels, "layouts": {}}
    servers: dict[str, Server] = {}
    try:
        for layout in LAYOUTS:
            url = admin.set(database=f"lis_part_{layout}")
            env = {**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False),
                   "LIS_VAR_DIR": str(work / f"var-{layout}")}
            loaded = work / f"loaded-{layout}.json"
            if loaded.exists():  # a run that stopped after its loads: keep them
                result["layouts"][layout] = json.loads(loaded.read_text())
                log(f"{layout}: reusing the database loaded before")
            else:
                result["layouts"][layout] = _prepare(cluster, url, layout, env, dataset.path)
                loaded.write_text(json.dumps(result["layouts"][layout]))
            servers[layout] = Server(layout, [sys.executable, "-m", "lis.cli", "serve"],
                                     {**env, "PORT": "{port}", "HOST": "127.0.0.1",
                                      "LIS_WORKERS": "1"}, work / f"serve-{layout}.log",
                                     ready_path="/collections")  # /health: 503 below 0020
            servers[layout].start()
        district = dataset.districts[0]
        with psycopg.connect(**cluster.conninfo("lis_part_plain")) as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT uid FROM cadastre.parcel WHERE district_code = %s "
                "ORDER BY uid", (district,)).fetchall()]
        rng = random.Random(7)
        sample = [rng.choice(ids) for _ in range(args.requests)]
        cells = {
            "district pull": None,
            "first 1,000 of a district": lambda c, b: timed(
                c, f"{b}/collections/parcels-{district}/items", {"limit": 1000}),
            "one parcel by id, national collection": lambda c, b: timed(
                c, f"{b}/collections/parcels/items/{rng.choice(sample)}"),
            "one parcel by id, district collection": lambda c, b: timed(
                c, f"{b}/collections/parcels-{district}/items/{rng.choice(sample)}"),
        }
        with httpx.Client(timeout=120) as client:
            for server in servers.values():  # warm each server's pool and caches
                pull(client, server.base, district)
            for rep in range(args.reps):
                for cell, fn in cells.items():
                    for layout, server in servers.items():
                        got = result["layouts"][layout]["cells"].setdefault(cell, [])
                        if fn is None:
                            seconds, features = pull(client, server.base, district)
                            got.append(seconds)
                            result["district_features"] = features
                        else:
                            times = [fn(client, server.base) for _ in range(args.requests)]
                            got.append(statistics.median(times) * 1000)
                log(f"turn {rep + 1} of {args.reps} done")
        for server in servers.values():
            server.stop()
        servers.clear()
        engine = make_engine(admin.set(database="lis_part_plain"))
        started = time.perf_counter()
        upgrade(engine, MIGRATIONS)
        result["convert_in_place_s"] = time.perf_counter() - started
        engine.dispose()
        log(f"0020 converted the plain database in place in {result['convert_in_place_s']:.1f} s")
    finally:
        for server in servers.values():
            server.stop()
        cluster.stop()
    (work / "results.json").write_text(json.dumps(result, indent=2))
    plain, part = (result["layouts"][k] for k in LAYOUTS)
    print(f"\n{result['parcels']:,} parcels generated, {plain['rows']:,} loaded, "
          f"district {district} ({result['district_features']:,} parcels)\n")
    print("| measure | plain tables | partitioned | ratio |\n|---|---:|---:|---:|")
    print(f"| load (s) | {plain['load_s']:.1f} | {part['load_s']:.1f} | "
          f"{part['load_s'] / plain['load_s']:.2f} |")
    for cell in cells:
        a, b = (statistics.median(x["cells"][cell]) for x in (plain, part))
        unit = "s" if cell == "district pull" else "ms (p50)"
        runs = " / ".join(", ".join(f"{v:.2f}" for v in x["cells"][cell]) for x in (plain, part))
        print(f"| {cell}, {unit} (runs: {runs}) | {a:.2f} | {b:.2f} | {b / a:.2f} |")
    total = {k: sum(v["bytes"].values()) for k, v in result["layouts"].items()}
    print(f"| large tables with indexes (MB) | {total['plain'] / 2**20:,.0f} | "
          f"{total['partitioned'] / 2**20:,.0f} | {total['partitioned'] / total['plain']:.2f} |")
    print(f"\n0020 converted the loaded plain database in place in "
          f"{result['convert_in_place_s']:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
