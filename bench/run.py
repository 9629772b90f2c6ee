"""``python -m bench.run``: the whole benchmark in one command, on one database.

    generate data -> load it (our ETL vs ogr2ogr) -> start every system (platform, tipg,
    stock pygeoapi, and the raw SQL floor) -> check each one's answers -> for every request
    kind and client count, time each system in turn -> page one district through GDAL,
    systems taking turns -> stop them -> write docs/benchmarks.md and .json.

Systems take turns cell by cell (rather than one system after another) so that whatever
else the machine does drifts over all of them alike; only one system is under load at a
time (an idle server costs no CPU), and the database is idle before every cell.

Bounded everywhere: every cell has a deadline and a request cap, every child process a
timeout, every server a start deadline; all traffic goes to 127.0.0.1. A system or a
request kind that is missing or broken is reported ("n/a", "failed", "wrong"), never
fatal to the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench import data, database, gdal, load, loadgen, machine, peers, report, workload
from bench.loadgen import Cell
from bench.servers import Server, ServerError, platform_server
from bench.systems import (
    COLD_KINDS,
    KINDS,
    HttpSpelling,
    WrongAnswer,
    check,
    items,
    platform_spelling,
    pygeoapi_spelling,
    raw_body,
    raw_statement,
    tipg_spelling,
)

PROJECT_DIR = Path(__file__).resolve().parent.parent
# "platform" runs as one process beside the peers' one each; "platform_workers" is
# `lis serve` as a user starts it, with its default worker processes (LIS_WORKERS).
SYSTEMS = ("platform", "platform_workers", "raw", "tipg", "pygeoapi")
FULL_PARCELS, QUICK_PARCELS = 1_000_000, 50_000
FULL_DURATION_S, QUICK_DURATION_S = 10.0, 3.0
CHECKS_PER_KIND = 3
WARMUP_S = 1.0
IDLE_WAIT_S = 30.0  # for queries abandoned by timed-out clients; then they are cancelled
SLOW_P50_S = 10.0  # a kind this slow is not tried with more clients
PLATFORM_TILE_TEMPLATES = (
    "/collections/parcels/tiles/WebMercatorQuad/{z}/{y}/{x}",
    "/collections/parcels/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt",
)

# (cell, seconds, the slice of the request list to ask: cold kinds only, else None)
Runner = Callable[[Cell, float, slice | None], Awaitable[Cell]]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run",
                                description=__doc__.split("\n")[0].strip("`: "))
    p.add_argument("--parcels", type=int, help=f"parcels to generate (default {FULL_PARCELS:,}; "
                   f"--quick: {QUICK_PARCELS:,}); 10000000 for the growth target")
    p.add_argument("--districts", default="auto",
                   help="districts to spread them over: auto (all 54) or a number")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK_PARCELS:,} parcels and {QUICK_DURATION_S:g} s per cell")
    p.add_argument("--skip-load", action="store_true",
                   help="do not time the loads (reuse a --keep database of the same size)")
    p.add_argument("--out", type=Path, default=PROJECT_DIR / "docs" / "benchmarks.md")
    p.add_argument("--keep", action="store_true",
                   help="leave the bench database and its cluster running afterwards")
    p.add_argument("--duration", type=float, help="seconds per cell (default 10, --quick 3)")
    p.add_argument("--concurrency", default="1,8,32", help="client counts (default 1,8,32)")
    p.add_argument("--systems", default=",".join(SYSTEMS),
                   help=f"subset of {','.join(SYSTEMS)}")
    p.add_argument("--max-requests", type=int, default=100_000, help="cap per cell")
    p.add_argument("--gdal-reps", type=int, default=3)
    p.add_argument("--work", type=Path, default=PROJECT_DIR / "var" / "bench",
                   help="cluster, data, peers venv, logs (default var/bench)")
    args = p.parse_args(argv)
    args.parcels = args.parcels or (QUICK_PARCELS if args.quick else FULL_PARCELS)
    args.duration = args.duration or (QUICK_DURATION_S if args.quick else FULL_DURATION_S)
    args.concurrency = sorted({int(c) for c in args.concurrency.split(",")})
    args.systems = [s for s in args.systems.split(",") if s]
    if unknown := set(args.systems) - set(SYSTEMS):
        p.error(f"unknown systems: {', '.join(sorted(unknown))}")
    if args.districts != "auto" and not args.districts.isdigit():
        p.error("--districts must be 'auto' or a number")
    return args


@dataclass
class System:
    """One system under test: a started server (None for raw SQL) and its ready kinds."""

    name: str
    server: Server | None = None
    spelling: HttpSpelling | None = None
    na: dict[str, str] = field(default_factory=dict)  # kind -> why not offered
    gdal_collection: str | None = None
    runners: dict[str, Runner] = field(default_factory=dict)  # checked kinds


class Bench:
    """One run: configuration, database, workload, systems and results."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = args.work.absolute()
        self.logs = self.work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.cells: list[Cell] = []
        self.status: dict[str, dict] = {}
        self.peer_versions: dict[str, str] = {}
        self.load_results: dict | None = None
        self.servers: list[Server] = []  # every server started, to stop them all at the end
        self.gdal_timeout = 120.0 if args.quick else 900.0
        self.gdal_results: list[gdal.GdalResult] = []  # every client x system, GDAL alone

    # ------------------------------------------------------------------ data & load

    def prepare(self) -> None:
        a = self.args
        districts = None if a.districts == "auto" else int(a.districts)
        self.dataset = data.generate(self.work / "data", a.parcels, districts, log=log)
        self.db = database.open_database(self.work / "pg", fresh=False)
        if a.skip_load and database.parcel_count(self.db) == a.parcels:
            log(f"db: reusing lis_bench with {a.parcels:,} parcels (--skip-load)")
        else:
            self.db = database.open_database(self.work / "pg", fresh=True)
            log(f"db: fresh lis_bench on 127.0.0.1:{self.db.port}, migrated")
            self.load(measure=not a.skip_load)
        self.view = database.prepare_for_reading(self.db, self.dataset.districts[0])
        self.workload = workload.build(self.db)
        w = self.workload
        log(f"workload: {len(w.bboxes)} bboxes, {len(w.ids)} ids, {len(w.filters)} filters, "
            f"{len(w.tiles)} tiles, GDAL district {w.gdal_district} "
            f"({w.districts[w.gdal_district]:,} parcels)")

    def load(self, measure: bool) -> None:
        timeout = 600 + self.args.parcels * 0.003
        lis = [sys.executable, "-m", "lis.cli"]
        log(f"load: lis load parcels {self.dataset.path.name} (our ETL)")
        etl = load.load_with_etl(self.db, lis, self.dataset.path, self.args.parcels, timeout,
                                 self.logs)
        log(f"load: ETL {etl.seconds:.1f} s, {etl.rows_per_s:,.0f} rows/s, "
            f"peak {etl.peak_rss_mb:,.0f} MB, exit {etl.returncode}, {etl.rows_in_db:,} rows")
        if etl.returncode != 0 or etl.rows_in_db != self.args.parcels:
            raise RuntimeError(f"the ETL did not load the data:\n{etl.output_tail}")
        if not measure:
            return
        log("load: ogr2ogr -f PostgreSQL (schema bench_ogr, dropped afterwards)")
        ogr = load.load_with_ogr2ogr(self.db, self.dataset.path, self.args.parcels, timeout,
                                     self.logs)
        log(f"load: ogr2ogr {ogr.seconds:.1f} s, {ogr.rows_per_s:,.0f} rows/s, "
            f"peak {ogr.peak_rss_mb:,.0f} MB, exit {ogr.returncode}")
        self.load_results = {"etl": etl.to_json(), "ogr2ogr": ogr.to_json()}
        path, n = load.redelivery_file(self.dataset.path, self.args.parcels // len(
            self.dataset.districts) + 1, self.work / "data")
        took = database.vacuum(self.db)
        log(f"load: re-delivery of one district ({n:,} parcels, 1% changed), after "
            f"VACUUM (ANALYZE) of the national load ({took:.0f} s, not timed)")
        again = load.load_with_etl(self.db, lis, path, n, timeout, self.logs,
                                   "lis load parcels, one district delivered again",
                                   "load-redelivery.log")
        log(f"load: re-delivery {again.seconds:.1f} s, peak {again.peak_rss_mb:,.0f} MB, "
            f"exit {again.returncode}")
        self.load_results["redelivery"] = again.to_json()

    # ------------------------------------------------------------------ systems

    def _peer_python(self) -> Path:
        python, how = peers.ensure_venv(self.work / "venv-peers", log)
        if python is None:
            raise ServerError(f"peers venv unavailable: {how}")
        if not self.peer_versions:
            self.peer_versions = peers.versions(python)
        return python

    def make_platform(self, workers: int | None = 1, name: str = "platform") -> System:
        server = platform_server(self.db, self.work, workers, name)
        self._start(server)
        template, note = self._probe_platform_tiles(server)
        return System(name, server, platform_spelling(template),
                      {} if template else {"tiles": note, "tiles_cold": note},
                      f"parcels-{self.workload.gdal_district}")

    def make_platform_workers(self) -> System:
        return self.make_platform(None, "platform_workers")

    def _probe_platform_tiles(self, server: Server) -> tuple[str | None, str]:
        if not self.workload.tiles:
            return None, "n/a: no tile in the workload"
        z, x, y = self.workload.tiles[0]
        seen = []
        with httpx.Client(base_url=server.base, timeout=60) as client:
            for template in PLATFORM_TILE_TEMPLATES:
                r = client.get(template.format(z=z, x=x, y=y))
                ctype = r.headers.get("content-type", "")
                seen.append(f"HTTP {r.status_code} {ctype or '-'}")
                if r.status_code in (200, 204) and "json" not in ctype and "html" not in ctype:
                    return template, ""
        return None, (f"n/a (not implemented): no vector tile at {PLATFORM_TILE_TEMPLATES[0]} "
                      f"({'; '.join(seen)})")

    def make_tipg(self) -> System:
        server = peers.tipg_server(self._peer_python(), self.db, self.work)
        self._start(server)
        return System("tipg", server, tipg_spelling(self.view), {}, f"bench.{self.view}")

    def make_pygeoapi(self) -> System:
        python = self._peer_python()
        district = self.workload.gdal_district
        try:
            server = peers.pygeoapi_server(python, self.db, district, self.view, self.work)
            self._start(server)
            na = {}
        except (ServerError, RuntimeError) as exc:
            log(f"  pygeoapi with MVT-postgresql did not start ({str(exc)[:200]}); "
                "retrying without tiles")
            server = peers.pygeoapi_server(python, self.db, district, self.view, self.work,
                                           with_tiles=False)
            self._start(server)
            na = dict.fromkeys(("tiles", "tiles_cold"),
                               "n/a: pygeoapi did not start with the MVT-postgresql provider")
        return System("pygeoapi", server, pygeoapi_spelling(not na), na, f"parcels-{district}")

    def make_raw(self) -> System:
        return System("raw")

    def _start(self, server: Server) -> None:
        log(f"  starting {server.name}")
        self.servers.append(server)
        server.start()
        log(f"  {server.name} ready on {server.base}")

    def start_systems(self) -> list[System]:
        systems = []
        for name in self.args.systems:
            log(f"system: {name}")
            self.status[name] = {"status": "ok", "note": ""}
            try:
                system = getattr(self, f"make_{name}")()
                self.check_system(system)
                systems.append(system)
                self._settle()
            except Exception as exc:  # noqa: BLE001 - one broken system must not end the run
                traceback.print_exc()
                self.status[name] = {"status": "failed",
                                     "note": f"{type(exc).__name__}: {str(exc)[:400]}"}
                for kind in KINDS:
                    self._mark(name, kind, "failed", "the system did not start")
        return systems

    # ------------------------------------------------------------------ checks

    def _mark(self, system: str, kind: str, status: str, note: str,
              clients: list[int] | None = None) -> None:
        for c in clients or self.args.concurrency:
            self.cells.append(Cell(system, kind, c, status=status, note=note))

    def check_system(self, system: System) -> None:
        """Check a few answers of every kind; a kind that passes gets a runner."""
        w = self.workload
        for kind in KINDS:
            if kind in system.na:
                self._mark(system.name, kind, "n/a", system.na[kind])
                continue
            reqs = items(w, kind)
            if not reqs:
                self._mark(system.name, kind, "n/a", "no request of this kind in the workload")
                continue
            try:
                if system.server is None:
                    system.runners[kind] = self._check_raw(kind, reqs)
                else:
                    system.runners[kind] = self._check_http(system, kind, reqs)
            except Exception as exc:  # noqa: BLE001 - any surprise in an answer is "wrong"
                status = "failed" if isinstance(exc, httpx.HTTPError) else "wrong"
                log(f"  {system.name} {kind}: {status}: {str(exc)[:300]}")
                self._mark(system.name, kind, status, str(exc)[:300])

    @staticmethod
    def _checked_part(kind: str, reqs: list) -> tuple[list, list]:
        """(the requests checked, the requests timed): a cold kind is checked on the end
        of its list, which no cell asks, so that no timed tile was asked before."""
        if kind in COLD_KINDS:
            return reqs[-CHECKS_PER_KIND:], reqs[:-CHECKS_PER_KIND]
        return reqs[:CHECKS_PER_KIND], reqs

    def _cap(self, n: int, part: slice | None) -> tuple[slice, int]:
        """(the slice to ask, the request cap): a cold cell stops when its slice is used
        up rather than ask a tile twice."""
        if part is None:
            return slice(None), self.args.max_requests
        return part, min(self.args.max_requests, len(range(n)[part]))

    def _check_http(self, system: System, kind: str, reqs: list) -> Runner:
        server = system.server
        checked, timed = self._checked_part(kind, reqs)
        with httpx.Client(base_url=server.base, timeout=loadgen.REQUEST_TIMEOUT_S) as client:
            for item in checked:
                path = system.spelling.path(kind, item)
                r = client.get(path)
                if r.status_code >= 300:
                    raise WrongAnswer(f"GET {path} -> HTTP {r.status_code}: {r.text[:200]}")
                check(kind, item, r.content, self.workload)
        paths = [system.spelling.path(kind, item) for item in timed]

        async def run(cell: Cell, seconds: float, part: slice | None = None) -> Cell:
            part, cap = self._cap(len(paths), part)
            return await loadgen.http_cell(server.base, paths[part], cell, seconds, cap)
        return run

    def _check_raw(self, kind: str, reqs: list) -> Runner:
        checked, timed = self._checked_part(kind, reqs)
        with self.db.connect(autocommit=True) as conn:
            for item in checked:
                stmt, params = raw_statement(kind, item)
                row = conn.execute(stmt, params).fetchone()
                check(kind, item, raw_body(kind, row and row[0]), self.workload)
        statements = [raw_statement(kind, item) for item in timed]
        conninfo = self.db.conninfo()

        async def run(cell: Cell, seconds: float, part: slice | None = None) -> Cell:
            part, cap = self._cap(len(statements), part)
            return await loadgen.sql_cell(conninfo, statements[part], cell, seconds, cap)
        return run

    # ------------------------------------------------------------------ measuring

    def _settle(self) -> None:
        for server in self.servers:
            if (quiet := server.wait_quiet(IDLE_WAIT_S)) > 2:
                log(f"  waited {quiet:.0f} s for {server.name} to go quiet")
        waited, cancelled = database.wait_idle(self.db, IDLE_WAIT_S)
        if waited > 1:
            log(f"  waited {waited:.0f} s for abandoned queries"
                + (f", then cancelled {cancelled}" if cancelled else ""))

    def measure(self, systems: list[System]) -> None:
        """Every kind, every client count, the systems taking turns.

        A (system, kind) that fails, or whose p50 passes SLOW_P50_S, is not tried with
        more clients: it would only hold the database for minutes.
        """
        for kind in KINDS:
            ready = [s for s in systems if kind in s.runners]
            skipped: dict[str, str] = {}
            parts = self._cold_parts(kind, systems)
            for s in ready:  # warm-up, not recorded
                self._settle()
                asyncio.run(s.runners[kind](Cell(s.name, kind, 1),
                                            min(WARMUP_S, self.args.duration),
                                            parts[0][s.name]))
            for k, c in enumerate(self.args.concurrency, start=1):
                for s in ready:
                    if s.name in skipped:
                        self.cells.append(Cell(s.name, kind, c, status="n/a",
                                               note=skipped[s.name]))
                        continue
                    self._settle()
                    cell = asyncio.run(s.runners[kind](Cell(s.name, kind, c),
                                                       self.args.duration, parts[k][s.name]))
                    self.cells.append(cell)
                    log(f"  {kind:<13} {c:>2} clients {s.name:<8}: p50 {cell.p50_ms} ms, "
                        f"p99 {cell.p99_ms} ms, {cell.rps} req/s, {cell.errors} errors")
                    if cell.status != "ok" or (cell.p50_ms or 0) > SLOW_P50_S * 1000:
                        skipped[s.name] = (f"skipped: with {c} client(s) p50 was "
                                           f"{cell.p50_ms} ms ({cell.status})")

    def _cold_parts(self, kind: str, systems: list[System]) -> list[dict[str, slice | None]]:
        """Per cell (the warm-up, then each client count) and system its own share of a
        cold kind's requests (None for the other kinds): every k-th request, so every
        share has the list's zoom mix, and no two systems ask the same tile (the
        database's buffers, which they share, are not warmed by one for the next)."""
        cells = 1 + len(self.args.concurrency)
        if kind not in COLD_KINDS:
            return [dict.fromkeys((s.name for s in systems), None) for _ in range(cells)]
        step = cells * max(len(systems), 1)
        return [{s.name: slice(k * len(systems) + j, None, step)
                 for j, s in enumerate(systems)} for k in range(cells)]

    def measure_gdal(self, systems: list[System]) -> None:
        """Every GDAL client (``gdal.CLIENTS``) against every system, the systems taking
        turns run by run, and each client's GDAL alone on the same features."""
        w = self.workload
        expected = w.districts[w.gdal_district]
        work = self.work / "gdal"
        source, note = gdal.gdal_alone_file(self.db.ogr_pg, self.db.password, w.gdal_district,
                                            work, self.gdal_timeout)
        for client, (title, runs) in gdal.CLIENTS.items():
            results = []
            for s in systems:
                collection = s.gdal_collection or f"district {w.gdal_district}"
                if s.server is None and client != gdal.DEFAULT_CLIENT:
                    continue  # the raw floor pages by key over psycopg: no GDAL client
                s_result = gdal.GdalResult(s.name, collection, expected, client)
                self.gdal_results.append(s_result)
                results.append((s, s_result))
            alone = None
            if client == gdal.ALONE_OF[client]:
                alone = gdal.GdalResult(gdal.GDAL_ALONE, source.name if source else "-",
                                        expected, client, "ok" if source else "failed", note)
                self.gdal_results.append(alone)
            for rep in range(runs or self.args.gdal_reps):
                for s, s_result in results:
                    self._settle()
                    if s.server is None:
                        gdal.raw_once(s_result, self.db.conninfo(), w.gdal_district)
                    else:
                        gdal.client_once(s_result, s.server.base, self.gdal_timeout, work)
                    log(f"  GDAL {client} district {w.gdal_district} run {rep + 1} "
                        f"{s.name:<8}: {s_result.status} "
                        f"{s_result.runs_s[-1] if s_result.runs_s else ''} {s_result.note}")
                if alone is not None and source is not None:
                    gdal.gdal_alone_once(alone, source, self.gdal_timeout, work)
                    log(f"  GDAL {client} district {w.gdal_district} run {rep + 1} GDAL "
                        f"alone: {alone.status} {alone.runs_s[-1] if alone.runs_s else ''}")
            log(f"  {title}: done")
        if source is not None:
            source.unlink(missing_ok=True)

    # ------------------------------------------------------------------ report

    def results(self, started: float, machine_info: dict, systems: list[System]) -> dict:
        a = self.args
        machine_info["load_average_end"] = machine.load_average()
        ds = self.dataset
        gdal_results = [g.to_json() for g in self.gdal_results]
        gdal_results += [gdal.GdalResult(name, "-", 0, status="failed",
                                         note=info["note"]).to_json()
                         for name, info in self.status.items() if info["status"] != "ok"]
        return {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python -m bench.run " + shlex.join(sys.argv[1:]),
            "wall_s": round(time.monotonic() - started, 1),
            "config": {"quick": a.quick, "duration_s": a.duration, "concurrency": a.concurrency,
                       "systems": a.systems, "max_requests": a.max_requests,
                       "gdal_reps": a.gdal_reps, "gdal_page_size": gdal.PAGE_SIZE,
                       "gdal_clients": {k: v[0] for k, v in gdal.CLIENTS.items()},
                       "request_timeout_s": loadgen.REQUEST_TIMEOUT_S},
            "machine": machine_info,
            "versions": self.versions,
            "peer_versions": self.peer_versions,
            "data": {"parcels": ds.parcels, "districts": ds.districts,
                     "known_extent_districts": ds.known_extent_districts,
                     "synthetic_extent_districts": ds.synthetic_extent_districts,
                     "size_mb": round(ds.size_bytes / 1e6, 1), "seconds": round(ds.seconds, 1),
                     "reused": ds.reused, "file": str(ds.path)},
            "load": self.load_results,
            "workload": self.workload.to_json(),
            "systems": self.status,
            "cells": [c.to_json() for c in self.cells],
            "gdal": gdal_results,
        }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    bench = Bench(args)
    machine_info = machine.describe(bench.work)
    log(f"{args.parcels:,} parcels, {args.duration:g} s per cell, clients "
        f"{args.concurrency}, systems {args.systems}; load average "
        f"{machine_info['load_average_start']}")
    systems: list[System] = []
    try:
        bench.prepare()
        bench.versions = machine.versions(bench.db)
        systems = bench.start_systems()
        bench.measure(systems)
        bench.measure_gdal(systems)
        for s in systems:
            if s.server is not None:
                bench.status[s.name]["rss_mb_after"] = s.server.rss_mb()
        out_json = report.write(bench.results(started, machine_info, systems), args.out)
        log(f"wrote {args.out} and {out_json} in {(time.monotonic() - started) / 60:.1f} min")
    finally:
        for server in bench.servers:
            server.stop()
        db = getattr(bench, "db", None)
        if db is not None and not args.keep:
            with contextlib.suppress(Exception):
                database.drop_database(db)
            db.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
