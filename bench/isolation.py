"""Cheap requests under heavy ones: p99 of ``/health`` and of a by-id read, idle and while
20 anonymous clients ask for the heaviest public things there are (HTML pages asking for
10,000 items, planning-overlay process runs) for 30 s.

    python -m bench.isolation [--workers 1 2] [--heavy 20] [--duration 30]

The database is the bench's own (samples loaded, as ``bench.loadtest`` does); the server
is ``lis serve`` started once per worker count. The probe runs in its own process (its
timings are not delayed by the heavy clients' parsing) and sends one cheap request at a
time, alternating ``/health`` and a by-id parcel read, every ``PROBE_GAP_S``. Heavy
clients that are told 503 + Retry-After (the process cap) count as shed, not as errors;
an error is a probe answer other than 200, or any 5xx other than a 503 with Retry-After.
Results: docs/isolation.md and docs/isolation.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench import database, machine
from bench.loadtest import load_samples
from bench.servers import platform_server

PROJECT = Path(__file__).resolve().parent.parent
DOCS = PROJECT / "docs"
PROBE_GAP_S = 0.05
IDLE_REQUESTS = 300
TARGET_RATIO = 3.0
MAX_WALL_S = 1800.0


def log(msg: str) -> None:
    print(f"[isolation {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def probe(base: str, by_id: str, seconds: float, count: int, out: multiprocessing.Queue
          ) -> None:
    """One cheap request at a time until ``seconds`` or ``count``: (path kind, ms, status)."""
    rows = []
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=30) as client:
        for i in range(count):
            if time.monotonic() > deadline:
                break
            kind, path = ("health", "/health") if i % 2 == 0 else ("by-id", by_id)
            t0 = time.perf_counter()
            try:
                status = client.get(base + path).status_code
            except httpx.HTTPError:
                status = 0
            rows.append((kind, (time.perf_counter() - t0) * 1000, status))
            time.sleep(PROBE_GAP_S)
    out.put(rows)


def run_probe(base: str, by_id: str, seconds: float, count: int) -> list[tuple]:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    proc = multiprocessing.Process(target=probe, args=(base, by_id, seconds, count, queue))
    proc.start()
    rows = queue.get(timeout=seconds + 120)
    proc.join(30)
    return rows


async def heavy_client(client: httpx.AsyncClient, base: str, districts: list[str],
                       plans: list[str], deadline: float, rng: random.Random,
                       tally: dict[str, int]) -> None:
    while time.monotonic() < deadline:
        if rng.random() < 0.5 or not plans:
            kind = "html-page"
            request = client.get(f"{base}/collections/parcels-{rng.choice(districts)}/items",
                                 params={"f": "html", "limit": 10000})
        else:
            kind = "overlay"
            request = client.post(f"{base}/processes/planning-overlay/execution",
                                  json={"inputs": {"plan_code": rng.choice(plans),
                                                   "min_share": 0.05}})
        try:
            r = await request
            status = r.status_code
            shed = status == 503 and "retry-after" in r.headers
        except httpx.HTTPError:
            status, shed = 0, False
        key = f"{kind} shed" if shed else f"{kind} {status}"
        tally[key] = tally.get(key, 0) + 1
        if shed:
            await asyncio.sleep(float(r.headers.get("retry-after", 1)))


async def heavy_load(base: str, clients: int, seconds: float, districts: list[str],
                     plans: list[str]) -> dict[str, int]:
    tally: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        await asyncio.gather(*(heavy_client(client, base, districts, plans, deadline,
                                            random.Random(i), tally)
                               for i in range(clients)))
    return tally


def summary(rows: list[tuple]) -> dict:
    out = {}
    for kind in ("health", "by-id"):
        ms = [r[1] for r in rows if r[0] == kind]
        out[kind] = {"requests": len(ms), "p50_ms": round(pct(ms, 50), 2),
                     "p99_ms": round(pct(ms, 99), 2),
                     "mean_ms": round(statistics.fmean(ms), 2) if ms else None,
                     "errors": sum(1 for r in rows if r[0] == kind and r[2] != 200)}
    return out


def measure(db: database.BenchDB, work: Path, workers: int, heavy: int,
            duration: float) -> dict:
    server = platform_server(db, work)
    server.env["LIS_WORKERS"] = str(workers)
    server.log_path = work / "logs" / f"platform-{workers}w.log"
    server.start()
    try:
        base = server.base
        with httpx.Client(timeout=60) as client:
            units = [c["id"] for c in client.get(f"{base}/collections?f=json").json()[
                "collections"] if c["id"].startswith("parcels-")]
            districts = [u.removeprefix("parcels-") for u in units]
            first = client.get(f"{base}/collections/parcels-{districts[0]}/items",
                               params={"limit": 1}).json()["features"][0]["id"]
            plans = [f["properties"].get("plan_code") for f in client.get(
                f"{base}/collections/plans/items", params={"limit": 50}).json()["features"]]
            plans = [p for p in plans if p]
        by_id = f"/collections/parcels-{districts[0]}/items/{first}"
        run_probe(base, by_id, 30, 40)  # warm: pools, caches, first-request costs
        idle = run_probe(base, by_id, 120, IDLE_REQUESTS)
        log(f"{workers} worker(s): idle {summary(idle)}")
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        prober = ctx.Process(target=probe, args=(base, by_id, duration, 100000, queue))
        prober.start()
        tally = asyncio.run(heavy_load(base, heavy, duration, districts, plans))
        loaded = queue.get(timeout=duration + 120)
        prober.join(30)
        server.wait_quiet(60)
        log(f"{workers} worker(s): loaded {summary(loaded)}; heavy {tally}")
        return {"workers": workers, "idle": summary(idle), "loaded": summary(loaded),
                "heavy": tally, "districts": len(districts), "plans": len(plans)}
    finally:
        server.stop()


def report(result: dict) -> str:
    lines = [
        "# Isolation: cheap requests under heavy ones",
        "",
        f"Run {result['date']} on {result['machine'].get('logical_cores')} cores with "
        f"`{result['command']}`. The samples database; {result['heavy_clients']} heavy "
        f"anonymous clients for {result['duration_s']:g} s (HTML items pages asking for "
        "10,000 items, which the server caps at LIS_HTML_PAGE_LIMIT; planning-overlay "
        "runs, capped at LIS_MAX_CONCURRENT_PROCESSES per worker); one probe in its own "
        f"process sending one cheap request every {PROBE_GAP_S * 1000:.0f} ms, "
        "alternating `/health` and a by-id parcel read. Target: loaded p99 at most "
        f"{TARGET_RATIO:g}x idle p99, zero probe errors.",
        "",
        "| workers | request | idle p50 / p99 (ms) | loaded p50 / p99 (ms) | p99 ratio | "
        "probe errors | heavy answers |",
        "|---|---|---|---|---|---|---|",
    ]
    for cell in result["cells"]:
        heavy = ", ".join(f"{k}: {v}" for k, v in sorted(cell["heavy"].items()))
        for kind in ("health", "by-id"):
            i, ld = cell["idle"][kind], cell["loaded"][kind]
            ratio = ld["p99_ms"] / i["p99_ms"] if i["p99_ms"] else float("nan")
            lines.append(f"| {cell['workers']} | {kind} | {i['p50_ms']} / {i['p99_ms']} | "
                         f"{ld['p50_ms']} / {ld['p99_ms']} | {ratio:.1f}x | "
                         f"{i['errors'] + ld['errors']} | {heavy if kind == 'health' else ''} |")
    lines += ["", "The heavy clients and the probe run on the same two cores as the server "
              "and PostgreSQL: what a cheap request waits for under load includes them.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--heavy", type=int, default=20)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--work", type=Path, default=PROJECT / "var" / "bench-isolation")
    p.add_argument("--no-report", action="store_true", help="Do not write docs/.")
    args = p.parse_args(argv)
    if not 0 < args.duration <= 300 or not 0 < args.heavy <= 100:
        p.error("--duration must be in (0, 300] and --heavy in (0, 100]")
    wall0 = time.monotonic()
    args.work.mkdir(parents=True, exist_ok=True)
    db = database.open_database(args.work / "pg", fresh=True, dbname="lis_isolation")
    try:
        log("loading data/samples")
        load_samples(db, args.work)
        cells = []
        for workers in args.workers:
            if time.monotonic() - wall0 > MAX_WALL_S:
                log("wall-clock budget spent: stopping")
                break
            cells.append(measure(db, args.work, workers, args.heavy, args.duration))
    finally:
        db.stop()
    result = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
              "command": "python -m bench.isolation " + " ".join(argv or sys.argv[1:]),
              "machine": machine.describe(args.work), "heavy_clients": args.heavy,
              "duration_s": args.duration, "cells": cells}
    if not args.no_report:
        (DOCS / "isolation.json").write_text(json.dumps(result, indent=1) + "\n")
        (DOCS / "isolation.md").write_text(report(result))
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
