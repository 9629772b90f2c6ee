"""Turn one run's results into ``docs/benchmarks.md`` (+ ``benchmarks.json`` beside it).

The markdown leads with the targets of issue 5 (pass/miss, and by how much), then the
ratio table (platform vs each peer, every request kind and client count), the raw
numbers, the loads, and what could not be measured and why. The JSON keeps every number
and ``benchmarks-history.json`` beside them keeps a small per-size history (the version,
the date and the platform's p50 per kind, one entry per data size), which is how the
10M-vs-1M growth target gets evaluated: run once at 1M and once with
``--parcels 10000000 --out docs/benchmarks-10m.md``; every report in that directory reads
and updates the same history.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.gdal import ALONE_OF, CLIENTS, DEFAULT_CLIENT
from bench.systems import KIND_TITLES, KINDS

SYSTEM_TITLES = {"platform": "this platform",
                 "platform_workers": "this platform, default workers",
                 "tipg": "tipg", "pygeoapi": "stock pygeoapi",
                 "raw": "raw SQL floor", "gdal_alone": "GDAL alone (local file, no server)"}
PEERS = ("tipg", "pygeoapi", "raw")
SYSTEM_HOW = {
    "platform": "`lis serve` (uvicorn, 1 process: LIS_WORKERS=1), collections `parcels`, "
                "`parcels-<district>`",
    "platform_workers": "`lis serve` as a user starts it: default LIS_WORKERS (one process "
                        "per core, at most 4), each with its own pools and tile cache",
    "tipg": "`uvicorn tipg.main:app` (1 process), `publish.parcels`, `bench.parcels_<district>`",
    "pygeoapi": "`uvicorn pygeoapi.starlette_app:APP` (1 process), PostgreSQL provider on "
                "`publish.parcels` and `bench.parcels_<district>`, MVT-postgresql tiles",
    "raw": "psycopg, one connection per client, the SQL that builds the same GeoJSON/MVT",
}
BUSY_LOAD_PER_CORE = 0.5
RSS_LIMIT_MB = 1.5 * 1024


def _cell(results: dict, system: str, kind: str, clients: int) -> dict | None:
    for c in results["cells"]:
        if c["system"] == system and c["kind"] == kind and c["clients"] == clients:
            return c
    return None


def _usable(cell: dict | None, key: str) -> float | None:
    if cell is None or cell["status"] != "ok":
        return None
    return cell.get(key)


def _gdal(results: dict, system: str, client: str = DEFAULT_CLIENT) -> dict | None:
    return next((g for g in results["gdal"] if g["system"] == system
                 and g.get("client", DEFAULT_CLIENT) == client), None)


def _gdal_s(results: dict, system: str, client: str = DEFAULT_CLIENT) -> float | None:
    g = _gdal(results, system, client)
    return g["median_s"] if g and g["status"] == "ok" else None


def _fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def _verdict(measured: float | None, op: str, target: float, extra_ok: bool = True) -> tuple:
    """(pass/miss/n/a, by how much) for ``measured op target``."""
    if measured is None:
        return "n/a", "not measured"
    if op == "<=":
        ok = measured <= target
        how = (f"{target / measured:.2f}x inside" if ok and measured > 0
               else f"{measured / target:.2f}x over")
    else:
        ok = measured >= target
        how = (f"{measured / target:.2f}x above" if ok
               else f"needs {target / measured:.2f}x more" if measured > 0 else "zero")
    if not extra_ok:
        return "miss", how + "; errors"
    return ("pass" if ok else "miss"), how


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def targets(results: dict) -> list[dict]:
    rows: list[dict] = []

    def p50(system: str, kind: str, clients: int = 1) -> float | None:
        return _usable(_cell(results, system, kind, clients), "p50_ms")

    def add(name: str, target: str, measured: float | None, op: str, bound: float,
            detail: str, extra_ok: bool = True) -> None:
        verdict, how = _verdict(measured, op, bound, extra_ok)
        rows.append({"target": name, "wanted": target, "measured": measured,
                     "verdict": verdict, "how_much": how, "detail": detail})

    mine = p50("platform", "items_bbox")
    for peer, bound in (("tipg", 0.3), ("pygeoapi", 0.2), ("raw", 2.0)):
        theirs = p50(peer, "items_bbox")
        add(f"items of 1,000 in a bbox: p50 time vs {SYSTEM_TITLES[peer]} (1 client)",
            f"<= {bound}x", _ratio(mine, theirs), "<=", bound,
            f"{_fmt(mine)} ms vs {_fmt(theirs)} ms")
    for client, (title, _runs) in CLIENTS.items():
        t_mine, t_stock = _gdal_s(results, "platform", client), _gdal_s(results, "pygeoapi",
                                                                          client)
        t_alone = _gdal_s(results, "gdal_alone", ALONE_OF[client])
        bound = (f"; GDAL alone takes {_fmt(t_alone)} s, so no server can exceed "
                 f"{_fmt(_ratio(t_stock, t_alone))}x here" if t_alone and t_stock else "")
        add(f"whole district into GDAL ({title}): stock pygeoapi time / platform time",
            ">= 10x", _ratio(t_stock, t_mine), ">=", 10.0,
            f"{_fmt(t_stock)} s vs {_fmt(t_mine)} s{bound}")
    cold, cold_floor = p50("platform", "tiles_cold"), p50("raw", "tiles_cold")
    add("vector tile z12-z16, cold: p50 time vs raw SQL floor (1 client)", "<= 1.2x",
        _ratio(cold, cold_floor), "<=", 1.2, f"{_fmt(cold)} ms vs {_fmt(cold_floor)} ms")
    t_new, t_new_alone = (_gdal_s(results, "platform", "gdal_new"),
                          _gdal_s(results, "gdal_alone", ALONE_OF["gdal_new"]))
    add(f"whole district into GDAL ({CLIENTS['gdal_new'][0]}): platform time / GDAL alone",
        "<= 1.3x", _ratio(t_new, t_new_alone), "<=", 1.3,
        f"{_fmt(t_new)} s vs {_fmt(t_new_alone)} s for GDAL reading the same features "
        "from a local file")
    top = max(results["config"]["concurrency"])
    workers_c, floor_c = (_cell(results, "platform_workers", "by_id", top),
                          _cell(results, "raw", "by_id", top))
    r_workers, r_floor = _usable(workers_c, "rps"), _usable(floor_c, "rps")
    add(f"{top} clients, one parcel by id, default workers: req/s vs raw SQL floor, zero "
        "errors", ">= 0.8x, 0 errors", _ratio(r_workers, r_floor), ">=", 0.8,
        f"{_fmt(r_workers, 1)} vs {_fmt(r_floor, 1)} req/s; errors: "
        f"{'n/a' if workers_c is None else workers_c['errors']}",
        extra_ok=not (workers_c and workers_c["errors"]))
    lowzoom = results.get("tiles_lowzoom")
    if lowzoom:
        slowest = max(z["max_ms"] for z in lowzoom["cold"])
        add(f"low-zoom tiles z0-z11, slowest cold tile (`bench.tiles_lowzoom`, "
            f"{lowzoom['parcels']:,} parcels, {lowzoom['when']})", "<= 1,000 ms", slowest,
            "<=", 1000.0, f"largest {max(z['max_bytes'] for z in lowzoom['cold']) / 1024:.1f}"
            " KB gzip (budget 500 KB); docs/tiles-lowzoom.md")
    for kind in KINDS:
        mine_c = _cell(results, "platform", kind, top)
        theirs_c = _cell(results, "tipg", kind, top)
        r_mine, r_theirs = _usable(mine_c, "rps"), _usable(theirs_c, "rps")
        errors = mine_c["errors"] if mine_c else None
        add(f"{top} clients, {KIND_TITLES[kind]}: req/s vs tipg, zero errors", ">= 3x, 0 errors",
            _ratio(r_mine, r_theirs), ">=", 3.0,
            f"{_fmt(r_mine, 1)} vs {_fmt(r_theirs, 1)} req/s; platform errors: "
            f"{'n/a' if errors is None else errors}", extra_ok=not errors)
    load = results.get("load")
    etl = load and load.get("etl")
    ogr = load and load.get("ogr2ogr")
    n = results["data"]["parcels"]
    scale_note = "" if n == 1_000_000 else f" (measured at {n:,} parcels; the target is at 1M)"
    etl_ok = etl and etl["returncode"] == 0 and etl["rows_in_db"] == etl["rows"]
    ogr_ok = ogr and ogr["returncode"] == 0
    add("ETL rows/s vs ogr2ogr -f PostgreSQL", ">= 1x",
        _ratio(etl["rows_per_s"] if etl_ok else None, ogr["rows_per_s"] if ogr_ok else None),
        ">=", 1.0, (f"{_fmt(etl['rows_per_s'], 0)} vs {_fmt(ogr['rows_per_s'], 0)} rows/s"
                    if etl_ok and ogr_ok else "load not measured or failed") + scale_note)
    add("ETL peak RSS", "< 1,536 MB", etl["peak_rss_mb"] if etl_ok else None, "<=",
        RSS_LIMIT_MB, (f"{_fmt(etl['peak_rss_mb'], 0)} MB" if etl_ok else "not measured")
        + scale_note)
    again = load and load.get("redelivery")
    again_ok = again and again["returncode"] == 0
    add("one district delivered again (1% changed): wall time of `lis load parcels`",
        "<= 5 s", again["seconds"] if again_ok else None, "<=", 5.0,
        (f"{again['rows']:,} parcels, {_fmt(again['seconds'], 1)} s" if again_ok
         else "not measured or failed") + scale_note)
    history = results.get("history", {})
    small, big = history.get("1000000"), history.get("10000000")
    for kind in KINDS:  # every read cell (issue 15): a kind the 10M run lacks says so
        a = small and small["platform_p50_ms"].get(kind)
        b = big and big["platform_p50_ms"].get(kind)
        add(f"growth 10M vs 1M, p50 of {KIND_TITLES[kind]} (platform, 1 client)", "<= 1.3x",
            _ratio(b, a), "<=", 1.3,
            f"{_fmt(b)} ms at 10M vs {_fmt(a)} ms at 1M" if a and b
            else f"needs this cell in a 1M and a 10M run (history in {HISTORY_FILE})")
    return rows


def history_entry(results: dict) -> dict:
    return {"date": results["date"],
            "platform": results.get("versions", {}).get("platform"),
            "report": results.get("report"), "platform_p50_ms": {
        kind: _usable(_cell(results, "platform", kind, 1), "p50_ms") for kind in KINDS}}


def _busy(results: dict) -> bool:
    """Other work on the machine when the run began: the 1-minute load average at the
    start. The 5- and 15-minute averages still remember what ran before, and the load at
    the end is the benchmark's own 32-client cells, so neither says the run was shared."""
    cores = results["machine"]["logical_cores"] or 1
    return results["machine"]["load_average_start"][0] > BUSY_LOAD_PER_CORE * cores


def _ratios_table(results: dict) -> list[str]:
    conc = results["config"]["concurrency"]
    head = "| request | clients | " + " | ".join(
        f"vs {SYSTEM_TITLES[p]}: p50 / req/s" for p in PEERS) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(PEERS)]
    for kind in KINDS:
        for c in conc:
            mine = _cell(results, "platform", kind, c)
            parts = []
            for peer in PEERS:
                theirs = _cell(results, peer, kind, c)
                lat = _ratio(_usable(mine, "p50_ms"), _usable(theirs, "p50_ms"))
                thr = _ratio(_usable(mine, "rps"), _usable(theirs, "rps"))
                parts.append("n/a" if lat is None and thr is None
                             else f"{_fmt(lat)}x / {_fmt(thr)}x")
            lines.append(f"| {KIND_TITLES[kind]} | {c} | " + " | ".join(parts) + " |")
    return lines


def _raw_table(results: dict) -> list[str]:
    lines = ["| request | system | clients | p50 ms | p99 ms | req/s | KB/answer | requests "
             "| errors | note |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for kind in KINDS:
        for system in ("platform", "platform_workers", *PEERS):
            for c in results["config"]["concurrency"]:
                cell = _cell(results, system, kind, c)
                if cell is None:
                    continue
                note = cell["status"] if cell["status"] != "ok" else ""
                if cell["note"]:
                    note = f"{note}: {cell['note']}" if note else cell["note"]
                if cell["error_samples"]:
                    note += f" (e.g. {cell['error_samples'][0][:90]})"
                lines.append(
                    f"| {KIND_TITLES[kind]} | {SYSTEM_TITLES[system]} | {c} | "
                    f"{_fmt(cell['p50_ms'])} | {_fmt(cell['p99_ms'])} | {_fmt(cell['rps'], 1)} "
                    f"| {_fmt(cell.get('kb_per_response'), 1)} | {cell['requests']:,} "
                    f"| {cell['errors']:,} | {note.replace('|', '/')} |")
    return lines


def markdown(results: dict) -> str:
    m, v, d, cfg = results["machine"], results["versions"], results["data"], results["config"]
    out = ["# Benchmarks", "",
           f"Generated by `{results['command']}` on {results['date']} "
           f"(run took {results['wall_s'] / 60:.1f} min). Do not edit: re-run the command.", ""]
    if _busy(results):
        out += [f"> **The machine was busy** (load average {m['load_average_start']} at the "
                f"start, {m['load_average_end']} at the end, on {m['logical_cores']} cores): "
                "other work shared the CPUs, so absolute numbers mean little; the systems "
                "took turns cell by cell, so ratios are less affected, but still noisy.", ""]
    if cfg["quick"]:
        out += ["> Quick mode: small data and short cells, to prove the harness runs; the "
                "targets are defined at 1M parcels.", ""]
    out += ["Every server but `platform_workers` ran as one process on 127.0.0.1, the load "
            "generator on the same "
            f"{m['logical_cores']} cores; the systems took turns, one under load at a time, "
            f"the database idle before each cell; {cfg['duration_s']:g} s per cell at "
            f"{', '.join(map(str, cfg['concurrency']))} concurrent clients; latency is "
            "from request to the whole body; errors are non-2xx answers and exceptions "
            f"(timeout {cfg['request_timeout_s']:g} s). How it works: `bench/README.md`.", ""]
    out += ["## Targets (issues 5 and 15)", "",
            "| target | wanted | measured | verdict | by how much | detail |",
            "|---|---|---:|---|---|---|"]
    for t in results["targets"]:
        out.append(f"| {t['target']} | {t['wanted']} | {_fmt(t['measured'])} | "
                   f"**{t['verdict']}** | {t['how_much']} | {t['detail']} |")
    if results.get("analysis"):
        out += ["", f"## Where the time goes (from `docs/{ANALYSIS_FILE}`)", "",
                results["analysis"]]
    out += ["", "## Ratios: this platform / peer", "",
            "p50 ratio < 1 means the platform is faster; req/s ratio > 1 means it serves more.",
            "", *_ratios_table(results), ""]
    out += ["## Whole district into GDAL", "",
            f"District {results['workload']['gdal_district']} "
            f"({results['workload']['gdal_district_parcels']:,} parcels) by three clients: "
            "Debian's GDAL 3.6 `ogr2ogr -f GPKG out.gpkg OAPIF:<server> <collection>` with "
            "`-oo PAGE_SIZE=1000` and with its default paging, and a GDAL >= 3.8 "
            "(pyogrio's wheel) reading the collection with `pyogrio.raw.read(\"OAPIF:...\")`"
            f" and its default paging; {cfg['gdal_reps']} runs, median (default-paging 3.6: "
            "one run). The raw floor pages the same district by key over psycopg; GDAL "
            "alone reads the same features from a local GeoJSON file with the same GDAL "
            "(`ogr2ogr -f GPKG`, or pyogrio): GDAL's own share of every run, which no "
            "server can remove. Ratios: the system's time over the stock provider's "
            "(< 1 is faster) and over GDAL alone (>= 1; 1 would be a free server).", "",
            "| client | system | collection | median s | vs stock pygeoapi | vs GDAL alone "
            "| runs s | features | status |",
            "|---|---|---|---:|---:|---:|---|---:|---|"]
    for g in sorted(results["gdal"], key=lambda g: list(CLIENTS).index(
            g.get("client", DEFAULT_CLIENT))):
        client = g.get("client", DEFAULT_CLIENT)
        status = g["status"] + (f": {g['note']}" if g["note"] else "")
        t = g["median_s"] if g["status"] == "ok" else None
        out.append(f"| {CLIENTS[client][0]} | {SYSTEM_TITLES[g['system']]} | "
                   f"`{g['collection']}` | {_fmt(t)} | "
                   f"{_fmt(_ratio(t, _gdal_s(results, 'pygeoapi', client)))} | "
                   f"{_fmt(_ratio(t, _gdal_s(results, 'gdal_alone', ALONE_OF[client])))} | "
                   f"{', '.join(map(str, g['runs_s']))} | "
                   f"{g['features'] if g['features'] is not None else 'n/a'} | "
                   f"{' '.join(status.split()).replace('|', '/')} |")
    out += ["", "## Requests", "", *_raw_table(results), ""]
    out += ["## Loading the GeoPackage", ""]
    load = results.get("load")
    if load:
        out += ["| loader | rows | seconds | rows/s | peak RSS MB | rows in DB | exit "
                "| seconds per step |", "|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in (load["etl"], load["ogr2ogr"], load.get("redelivery")):
            if r is None:
                continue
            steps = ", ".join(f"{k} {v:g}" for k, v in (r.get("steps_s") or {}).items())
            out.append(f"| {r['tool']} | {r['rows']:,} | {_fmt(r['seconds'], 1)} | "
                       f"{_fmt(r['rows_per_s'], 0)} | {_fmt(r['peak_rss_mb'], 0)} | "
                       f"{r['rows_in_db']} | {r['returncode']} | {steps or '-'} |")
        out += ["", "Peak RSS is the loader's process tree, sampled every 50 ms; the "
                "PostgreSQL server is not counted for either. Seconds per step are the "
                "loader's own: reading and validating run in a producer thread while the "
                "connection stages (COPY), so they overlap; the wall time includes Python's "
                "start and the planner statistics after COMMIT.", ""]
    else:
        out += ["Not measured in this run (`--skip-load`).", ""]
    out += ["## Data", "",
            f"- {d['parcels']:,} parcels over {len(d['districts'])} districts in one "
            f"GeoPackage ({d['size_mb']:.0f} MB, generated in {d['seconds']:.0f} s"
            f"{', reused' if d['reused'] else ''}): {d['known_extent_districts']} districts "
            "with known extents (Hà Nội, Đà Nẵng; `cadastre.samplegen`) and "
            f"{d['synthetic_extent_districts']} Quảng Nam districts (real codes and "
            "communes) whose extents the reference data lacks and `bench/data.py` "
            "synthesises.",
            f"- Requests cycle through fixed seeded lists: {len(results['workload']['bboxes'])} "
            f"bboxes (each with >= 1,000 parcels), {results['workload']['ids']} ids, "
            f"{len(results['workload']['filters'])} CQL2 filters "
            "(`district_code='D' AND land_use='ODT' AND area_m2>median`), "
            f"{len(results['workload']['page_districts'])} districts, "
            f"{len(results['workload']['tiles'])} warm tiles (z12-z16 over the bboxes' "
            f"centres, asked again and again), "
            f"{results['workload'].get('cold_tiles', 0):,} cold tiles (distinct, where "
            "parcels are, zooms in turn: "
            + ", ".join(f"z{z} {n:,}" for z, n in results['workload'].get(
                'cold_tile_zooms', {}).items())
            + "), each cell of each system asking its own share of them once (every k-th, "
            "so the same zoom mix), no tile asked by two systems.",
            ""]
    out += ["## Not measured, failed or wrong", ""]
    gaps, seen = [], set()
    for c in results["cells"]:
        if c["status"] != "ok" and (c["system"], c["kind"]) not in seen:
            seen.add((c["system"], c["kind"]))
            gaps.append(f"- {SYSTEM_TITLES[c['system']]}, {KIND_TITLES[c['kind']]}, from "
                        f"{c['clients']} client(s): {c['status']}: {c['note']}")
    gaps += [f"- {SYSTEM_TITLES[s]}: {info['note']}" for s, info in results["systems"].items()
             if info["status"] != "ok"]
    out += (gaps or ["- nothing"]) + [""]
    out += ["## Machine and versions", "", "| | |", "|---|---|",
            f"| CPU | {m['cpu']}, {m['logical_cores']} logical cores "
            f"({m['physical_cores']} physical) |",
            f"| RAM | {m['ram_gib']} GiB |", f"| disk | {m['disk']} |", f"| OS | {m['os']} |",
            f"| load average | start {m['load_average_start']}, end {m['load_average_end']} |"]
    for key, value in v.items():
        out.append(f"| {key} | {value} |")
    for key, value in results.get("peer_versions", {}).items():
        out.append(f"| {key} (peers venv) | {value} |")
    out += ["", "Configuration of the peers: see `bench/peers.py`; raw numbers: "
            "`docs/benchmarks.json`.", ""]
    return "\n".join(out)


HISTORY_FILE = "benchmarks-history.json"
# Where the time of every missed target goes: an engineer's reading of a run, kept beside
# the report and printed under its targets (a run cannot write it; it says which run it
# read, so a report of a later run shows when it is stale).
ANALYSIS_FILE = "benchmarks-analysis.md"


def _read_history(out_md: Path) -> dict:
    """The directory's per-size history; before it had its own file, it lived inside the
    report's JSON, which is read once to carry it over."""
    for path in (out_md.parent / HISTORY_FILE, out_md.with_suffix(".json")):
        if path.exists():
            try:
                history = json.loads(path.read_text()).get("history", {})
            except (ValueError, AttributeError):
                continue
            if isinstance(history, dict):
                return history
    return {}


def write(results: dict, out_md: Path) -> Path:
    """Write the markdown and the JSON, and record this run in the directory's history."""
    out_json = out_md.with_suffix(".json")
    results["report"] = out_md.name
    history = _read_history(out_md)
    history[str(results["data"]["parcels"])] = history_entry(results)
    results["history"] = history
    analysis = out_md.parent / ANALYSIS_FILE  # written by hand about the latest run
    results["analysis"] = (analysis.read_text(encoding="utf-8").strip()
                           if analysis.exists() else None)
    lowzoom = out_md.parent / "tiles-lowzoom.json"  # its own command, its own figures
    if lowzoom.exists():
        results["tiles_lowzoom"] = json.loads(lowzoom.read_text(encoding="utf-8"))
    results["targets"] = targets(results)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(markdown(results), encoding="utf-8")
    out_json.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str) + "\n",
                        encoding="utf-8")
    (out_md.parent / HISTORY_FILE).write_text(
        json.dumps({"history": history}, indent=1, ensure_ascii=False) + "\n",
        encoding="utf-8")
    return out_json
