"""``python -m bench.loadtest``: concurrent reads and writes, then proof nothing was lost.

    own PostGIS cluster + fresh database -> migrate -> load data/samples -> ``lis serve``
    -> mint tokens -> N mixed clients for D seconds (reads of five kinds, ~15% writes:
    create / replace / retire of each client's own parcels) -> integrity check of every
    acknowledged write against audit.write_log, cadastre.parcel, history, events and the
    district counts -> docs/loadtest.md (+ the raw numbers appended to docs/loadtest.json).

Why a separate command from ``bench.run``: the benchmark measures reads against peers on
an idle machine; this asks whether the platform stays *correct* while it is busy (no 5xx,
no deadlock, no write lost or recorded twice). The bar: zero errors and zero integrity
findings; the exit status is 1 when it is missed (2 when the run could not be set up).

Bounded everywhere: the run stops at ``--duration`` or ``--max-requests``, whichever comes
first; requests time out; the whole client phase is cut at a hard deadline; every child
process has a timeout; all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx

from bench import database, loadtest_report, machine
from bench.database import BenchDB
from bench.loadgen import percentile
from bench.servers import Server, ServerError, platform_server
from bench.workload import hash_key, tile_of
from cadastre.writes import etag
from landplatform.auth.tokens import issue_local

PROJECT_DIR = Path(__file__).resolve().parent.parent
DBNAME = "lis_loadtest"
FULL_DURATION_S, QUICK_DURATION_S = 60.0, 10.0
DEFAULT_CLIENTS = 32
DEFAULT_WRITE_SHARE = 0.15
REQUEST_TIMEOUT_S = 30.0
HARD_GRACE_S = REQUEST_TIMEOUT_S + 15.0  # after the deadline, for requests in flight
LOAD_SAMPLES_TIMEOUT_S = 900
PAGE_LIMIT = 100
SHEET_BASE = 7000  # client i writes sheet SHEET_BASE + i: numbers no sample parcel uses
N_READ_ITEMS = 200
SEED = "lis-loadtest-2025"

READ_KINDS = ("read_page", "read_bbox", "read_by_id", "read_cql", "read_tile")
WRITE_KINDS = ("write_create", "write_replace", "write_delete")
KINDS = READ_KINDS + WRITE_KINDS
KIND_TITLES = {
    "read_page": "items page of a district (limit 100, offset)",
    "read_bbox": "items in a bbox (limit 100)",
    "read_by_id": "one parcel by id",
    "read_cql": "CQL2 filter (district, land use, area), limit 100",
    "read_tile": "vector tile z14-z16",
    "write_create": "POST a new parcel (201)",
    "write_replace": "PUT one of the client's parcels, If-Match (200)",
    "write_delete": "DELETE one of the client's parcels, If-Match (204)",
}
EXPECTED = {"read_tile": (200, 204), "write_create": (201,), "write_replace": (200,),
            "write_delete": (204,)}
MAX_ERROR_SAMPLES = 5


def log(msg: str) -> None:
    print(f"[loadtest {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.loadtest",
                                description="Concurrent reads and writes against the "
                                            "platform, then proof that no write was lost.")
    p.add_argument("--clients", type=int, default=DEFAULT_CLIENTS,
                   help=f"concurrent clients (default {DEFAULT_CLIENTS})")
    p.add_argument("--duration", type=float,
                   help=f"seconds of load (default {FULL_DURATION_S:g}; --quick "
                        f"{QUICK_DURATION_S:g})")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_DURATION_S:g} s of load")
    p.add_argument("--write-share", type=float, default=DEFAULT_WRITE_SHARE,
                   help="share of each client's requests that are writes (default 0.15)")
    p.add_argument("--max-requests", type=int, default=200_000,
                   help="hard cap on requests over the whole run")
    p.add_argument("--max-wall", type=float, default=600.0,
                   help="hard cap in seconds on the client phase (default 600)")
    p.add_argument("--out", type=Path, default=PROJECT_DIR / "docs" / "loadtest.md")
    p.add_argument("--work", type=Path, default=PROJECT_DIR / "var" / "loadtest",
                   help="cluster, server config and logs (default var/loadtest)")
    p.add_argument("--keep", action="store_true",
                   help="leave the database and its cluster running afterwards")
    p.add_argument("--seed", type=int, default=2025)
    args = p.parse_args(argv)
    args.duration = args.duration or (QUICK_DURATION_S if args.quick else FULL_DURATION_S)
    if not 1 <= args.clients <= 256:
        p.error("--clients must be 1..256")
    if not 0.0 <= args.write_share <= 1.0:
        p.error("--write-share must be 0..1")
    if args.duration <= 0 or args.duration > args.max_wall:
        p.error("--duration must be positive and at most --max-wall")
    return args


# --------------------------------------------------------------------------- set-up


def load_samples(db: BenchDB, work: Path) -> None:
    """``lis load samples`` as an operator would run it (its own process and engine)."""
    env = {**os.environ, "DATABASE_URL": db.sqlalchemy_url,
           "LIS_VAR_DIR": str(work / "lis-var")}
    out = subprocess.run([sys.executable, "-m", "lis.cli", "load", "samples"],
                         env=env, capture_output=True, text=True,
                         timeout=LOAD_SAMPLES_TIMEOUT_S, cwd=PROJECT_DIR)
    if out.returncode != 0:
        raise RuntimeError(f"lis load samples failed ({out.returncode}):\n"
                           f"{(out.stdout + out.stderr)[-2500:]}")


@dataclass
class Template:
    """A valid new parcel's shape in a district: an existing parcel's commune, area and
    geometry (overlaps are allowed; the loader's rules check location and area)."""

    commune_code: str
    area_m2: float
    geometry: dict


@dataclass
class Plan:
    """What the clients ask: drawn once from the loaded samples, seeded."""

    districts: list[str]
    write_districts: list[str]
    ids: list[int]
    bboxes: list[tuple[float, float, float, float]]
    cql: list[str]
    tiles: list[tuple[int, int, int]]
    pages: list[tuple[str, int]]
    templates: dict[str, list[Template]]
    initial_counts: dict[str, int]


def build_plan(db: BenchDB) -> Plan:
    """Districts, ids, bboxes, filters, tiles and write templates from the database."""
    with db.connect() as conn:
        counts = {r[0]: int(r[1]) for r in conn.execute(
            "SELECT district_code, parcel_count FROM publish.districts "
            "ORDER BY parcel_count DESC, district_code")}
        districts = sorted(counts)
        write_districts = sorted(list(counts)[:2])  # the two largest districts
        ids = [r[0] for r in conn.execute(
            "SELECT id FROM publish.parcels ORDER BY md5(id::text || %s) LIMIT %s",
            (SEED, N_READ_ITEMS))]
        points = conn.execute(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c, id "
            "FROM publish.parcels) p ORDER BY md5(p.id::text || %s || 'pt') LIMIT 40",
            (SEED,)).fetchall()
        cql: list[str] = []
        for d in districts:
            median = conn.execute(
                "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY area_m2) "
                "FROM publish.parcels WHERE district_code = %s AND land_use = 'ODT'",
                (d,)).fetchone()[0]
            if median is not None:
                cql.append(f"district_code='{d}' AND land_use='ODT' AND area_m2>{median}")
        templates: dict[str, list[Template]] = {}
        for d in write_districts:
            templates[d] = [Template(r[0], float(r[1]), json.loads(r[2])) for r in conn.execute(
                "SELECT commune_code, computed_area_m2, ST_AsGeoJSON(geom, 9) "
                "FROM cadastre.parcel WHERE district_code = %s AND status = 'current' "
                "ORDER BY md5(uid::text || %s) LIMIT 16", (d, SEED))]
    half = 0.002  # ~200 m on a side: tens to hundreds of parcels in the sample districts
    bboxes = [(round(x - half, 6), round(y - half, 6), round(x + half, 6), round(y + half, 6))
              for x, y in points]
    tiles = [tile_of(x, y, z) for x, y in points[:12] for z in (14, 15, 16)]
    pages = [(d, k * PAGE_LIMIT) for d in districts
             for k in range(max(1, min(10, counts[d] // PAGE_LIMIT)))]
    pages.sort(key=lambda p: hash_key(f"{p[0]}:{p[1]}"))
    return Plan(districts, write_districts, ids, bboxes, cql, tiles, pages, templates,
                counts)


def _q(params: dict) -> str:
    return "?" + urlencode(params, quote_via=quote)


def read_path(plan: Plan, kind: str, rng: random.Random) -> str:
    """One read request of a kind, drawn from the plan."""
    if kind == "read_page":
        d, offset = rng.choice(plan.pages)
        return f"/collections/parcels-{d}/items" + _q({"limit": PAGE_LIMIT, "offset": offset})
    if kind == "read_bbox":
        box = rng.choice(plan.bboxes)
        return "/collections/parcels/items" + _q({"bbox": ",".join(map(str, box)),
                                                  "limit": PAGE_LIMIT})
    if kind == "read_by_id":
        return f"/collections/parcels/items/{rng.choice(plan.ids)}"
    if kind == "read_cql":
        return "/collections/parcels/items" + _q({"filter": rng.choice(plan.cql),
                                                  "filter-lang": "cql2-text", "limit": 100})
    if kind == "read_tile":
        z, x, y = rng.choice(plan.tiles)
        return f"/collections/parcels/tiles/WebMercatorQuad/{z}/{y}/{x}"
    raise ValueError(kind)


# --------------------------------------------------------------------------- clients


@dataclass
class Actor:
    """Who a client writes as: its own subject, role, token, district and sheet."""

    index: int
    sub: str
    role: str
    district: str
    token: str
    sheet: int
    template: Template

    @property
    def collection(self) -> str:
        return f"parcels-{self.district}"


def make_actors(plan: Plan, secret: str, clients: int) -> list[Actor]:
    """Officers of the two write districts, and every fourth client an administrator
    (writing in one of the two), each with its own ``sub`` so the audit log names it."""
    actors = []
    for i in range(clients):
        district = plan.write_districts[i % len(plan.write_districts)]
        role = "admin" if i % 4 == 3 else "officer"
        sub = f"loadtest-c{i:03d}-{role}"
        tok = issue_local(secret, sub=sub, role=role,
                          district=district if role == "officer" else None, ttl_s=3600)
        tpls = plan.templates[district]
        actors.append(Actor(i, sub, role, district, tok, SHEET_BASE + i,
                            tpls[i // len(plan.write_districts) % len(tpls)]))
    return actors


@dataclass
class Op:
    """One write a client sent: what it meant, and what the server answered."""

    kind: str  # create | replace | delete
    request_id: str
    parcel_no: int
    uid: int | None
    before_etag: str | None  # the version the client replaced/retired
    acknowledged: bool = False
    after_etag: str | None = None
    address: str | None = None
    land_use: str | None = None


@dataclass
class Ledger:
    """A client's acknowledged writes in order, and its view of its own parcels."""

    actor: Actor
    ops: list[Op] = field(default_factory=list)
    live: dict[int, tuple[int, str]] = field(default_factory=dict)  # uid -> (parcel_no, etag)
    next_parcel: int = 1
    versions: int = 0
    writes_stopped: str | None = None  # why (after an unacknowledged write)


@dataclass
class KindStats:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: Counter = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(text[:300])


def feature(actor: Actor, parcel_no: int, land_use: str, address: str) -> bytes:
    t = actor.template
    return json.dumps({"type": "Feature", "geometry": t.geometry, "properties": {
        "commune_code": t.commune_code, "sheet_no": actor.sheet, "parcel_no": parcel_no,
        "area_m2": t.area_m2, "land_use": land_use, "address": address}}).encode()


class Run:
    """The client phase: N workers sharing one keep-alive pool, one request at a time each."""

    def __init__(self, base: str, plan: Plan, actors: list[Actor], args: argparse.Namespace)\
            -> None:
        self.base = base
        self.plan = plan
        self.args = args
        self.ledgers = [Ledger(a) for a in actors]
        self.stats = {k: KindStats() for k in KINDS}
        self.sent = 0
        self.seconds = 0.0
        self.cut = False

    def _budget(self) -> bool:
        """One more request allowed (the run-wide cap on requests)."""
        if self.sent >= self.args.max_requests:
            return False
        self.sent += 1
        return True

    async def _timed(self, kind: str, send) -> httpx.Response | None:  # noqa: ANN001
        """Send, time to the full body, count errors; None when it failed."""
        st = self.stats[kind]
        t0 = time.perf_counter()
        try:
            r = await send()
        except Exception as exc:  # noqa: BLE001 - every failure is a counted error
            st.error(f"{type(exc).__name__}: {exc}")
            return None
        ms = (time.perf_counter() - t0) * 1000
        st.statuses[r.status_code] += 1
        if r.status_code not in EXPECTED.get(kind, (200,)):
            st.error(f"HTTP {r.status_code} {r.request.method} {r.request.url.path}: "
                     f"{r.text[:200]}")
            return None
        st.latencies_ms.append(ms)
        return r

    async def read(self, client: httpx.AsyncClient, rng: random.Random) -> None:
        kind = rng.choice(READ_KINDS)
        path = read_path(self.plan, kind, rng)
        await self._timed(kind, lambda: client.get(path))

    async def write(self, client: httpx.AsyncClient, led: Ledger, rng: random.Random) -> None:
        """Create when the client has fewer than two parcels, else create 50% / replace
        30% / retire 20%; replace and retire send the ETag the client last saw."""
        a = led.actor
        roll = rng.random()
        choice = ("create" if len(led.live) < 2 or roll < 0.5
                  else "replace" if roll < 0.8 else "delete")
        rid = f"lt-{a.index:03d}-{len(led.ops) + 1:06d}"
        headers = {"Authorization": f"Bearer {a.token}", "X-Request-ID": rid}
        url = f"/collections/{a.collection}/items"
        if choice == "create":
            no = led.next_parcel
            led.next_parcel += 1
            op = Op("create", rid, no, None, None, land_use="ODT",
                    address=f"loadtest c{a.index} p{no} v0")
            body = feature(a, no, op.land_use, op.address)
            headers["Content-Type"] = "application/geo+json"
            led.ops.append(op)
            r = await self._timed("write_create", lambda: client.post(url, content=body,
                                                                        headers=headers))
            if r is not None:
                op.uid, op.after_etag = int(r.json()["id"]), r.headers.get("etag")
                led.live[op.uid] = (no, op.after_etag)
        else:
            uid = rng.choice(sorted(led.live))
            no, seen = led.live[uid]
            headers["If-Match"] = seen
            op = Op(choice, rid, no, uid, seen)
            led.ops.append(op)
            if choice == "replace":
                led.versions += 1
                op.land_use = ("TMD", "ODT")[led.versions % 2]
                op.address = f"loadtest c{a.index} p{no} v{led.versions}"
                body = feature(a, no, op.land_use, op.address)
                headers["Content-Type"] = "application/geo+json"
                r = await self._timed("write_replace", lambda: client.put(
                    f"{url}/{uid}", content=body, headers=headers))
                if r is not None:
                    op.after_etag = r.headers.get("etag")
                    led.live[uid] = (no, op.after_etag)
            else:
                r = await self._timed("write_delete", lambda: client.delete(
                    f"{url}/{uid}", headers=headers))
                if r is not None:
                    del led.live[uid]
        if r is None:
            # The outcome is unknown (it may have committed): the client's view of its own
            # parcels can no longer be trusted, so it only reads from now on; the integrity
            # check resolves the write from the audit log by its request id.
            led.writes_stopped = f"after {rid} ({choice}) was not acknowledged"
        else:
            op.acknowledged = True

    async def client(self, http: httpx.AsyncClient, led: Ledger, deadline: float) -> None:
        rng = random.Random(f"{self.args.seed}:{led.actor.index}")
        while time.perf_counter() < deadline and self._budget():
            if led.writes_stopped is None and rng.random() < self.args.write_share:
                await self.write(http, led, rng)
            else:
                await self.read(http, rng)

    async def warm_up(self, http: httpx.AsyncClient) -> None:
        """One request of every read kind, outside the figures: the first answers pay for
        imports, plans and caches, and a kind that fails here fails the run early."""
        rng = random.Random(self.args.seed)
        for kind in READ_KINDS:
            r = await http.get(read_path(self.plan, kind, rng))
            if r.status_code not in EXPECTED.get(kind, (200,)):
                raise RuntimeError(f"warm-up {kind}: HTTP {r.status_code} {r.text[:300]}")

    async def run(self) -> None:
        n = len(self.ledgers)
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        async with httpx.AsyncClient(base_url=self.base, limits=limits,
                                     timeout=REQUEST_TIMEOUT_S) as http:
            await self.warm_up(http)
            started = time.perf_counter()
            deadline = started + self.args.duration
            hard = min(self.args.duration + HARD_GRACE_S, self.args.max_wall)
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(self.client(http, led, deadline) for led in self.ledgers)),
                    hard)
            except TimeoutError:
                self.cut = True
            self.seconds = time.perf_counter() - started

    def figures(self) -> list[dict]:
        out = []
        for kind in KINDS:
            st = self.stats[kind]
            ok = sorted(st.latencies_ms)
            row = {"kind": kind, "title": KIND_TITLES[kind], "requests": len(ok) + st.errors,
                   "ok": len(ok), "errors": st.errors,
                   "rps": round(len(ok) / self.seconds, 2) if self.seconds else None,
                   "p50_ms": round(percentile(ok, 0.5), 1) if ok else None,
                   "p99_ms": round(percentile(ok, 0.99), 1) if ok else None,
                   "max_ms": round(ok[-1], 1) if ok else None,
                   "statuses": {str(k): v for k, v in sorted(st.statuses.items())},
                   "error_samples": st.error_samples}
            out.append(row)
        return out


# --------------------------------------------------------------------------- integrity


@dataclass
class Integrity:
    """What the database says about the clients' writes, against their ledgers."""

    acknowledged: int = 0
    audit_rows: int = 0
    unacknowledged: int = 0
    unacknowledged_committed: int = 0
    findings: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    MAX_FINDINGS = 50

    def find(self, text: str) -> None:
        if len(self.findings) < self.MAX_FINDINGS:
            self.findings.append(text)
        elif len(self.findings) == self.MAX_FINDINGS:
            self.findings.append("... (more findings not listed)")

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict:
        return {"ok": self.ok, "acknowledged_writes": self.acknowledged,
                "audit_rows": self.audit_rows, "unacknowledged_writes": self.unacknowledged,
                "unacknowledged_but_committed": self.unacknowledged_committed,
                "checked": self.checked, "findings": self.findings}


def _resolve_unacknowledged(led: Ledger, audit: dict[str, dict]) -> list[Op]:
    """The client's writes that took effect: acknowledged ones, and an unacknowledged last
    write when the audit log shows it committed (a lost response is not a lost write)."""
    applied = []
    for op in led.ops:
        if op.acknowledged:
            applied.append(op)
            continue
        row = audit.get(op.request_id)
        if row is not None:
            op.uid = op.uid or row["parcel_uid"]
            op.after_etag = etag(row["after"])
            applied.append(op)
    return applied


def check_integrity(db: BenchDB, ledgers: list[Ledger], plan: Plan) -> Integrity:
    """Every acknowledged write is in ``audit.write_log`` exactly once with the right actor,
    action, parcel and before/after; each client's parcels in ``cadastre.parcel`` are
    exactly the ones its writes leave (count, status, published row = last answer);
    history, events, load runs and the district counts add up."""
    res = Integrity()
    subs = [led.actor.sub for led in ledgers]
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT request_id, actor_sub, actor_role, actor_district, action, collection, "
            "district_code, parcel_uid, before, after, load_run_id FROM audit.write_log "
            "WHERE actor_sub = ANY(%s) ORDER BY id", (subs,)).fetchall()
        cols = ("request_id", "actor_sub", "actor_role", "actor_district", "action",
                "collection", "district_code", "parcel_uid", "before", "after", "load_run_id")
        audit_list = [dict(zip(cols, r, strict=True)) for r in rows]
        res.audit_rows = len(audit_list)
        per_rid = Counter(r["request_id"] for r in audit_list)
        for rid, n in per_rid.items():
            if n > 1:
                res.find(f"audit: request {rid} recorded {n} times")
        audit = {r["request_id"]: r for r in audit_list}
        sent_rids = {op.request_id for led in ledgers for op in led.ops}
        for rid in per_rid.keys() - sent_rids:
            res.find(f"audit: row for request {rid} that no client sent")

        runs = conn.execute(
            "SELECT run_by, count(*) FROM etl.load_run WHERE kind = 'api' AND run_by = ANY(%s) "
            "GROUP BY run_by", (subs,)).fetchall()
        runs_by = dict(runs)
        expected_by_district: Counter = Counter()
        action_of = {"create": "create", "replace": "replace", "delete": "delete"}
        for led in ledgers:
            a = led.actor
            applied = _resolve_unacknowledged(led, audit)
            res.acknowledged += sum(op.acknowledged for op in led.ops)
            res.unacknowledged += sum(not op.acknowledged for op in led.ops)
            res.unacknowledged_committed += sum(not op.acknowledged for op in applied)
            if runs_by.get(a.sub, 0) != len(applied):
                res.find(f"{a.sub}: {runs_by.get(a.sub, 0)} api load runs for "
                         f"{len(applied)} writes")
            # The audit rows, one by one.
            for op in applied:
                row = audit.get(op.request_id)
                if row is None:
                    res.find(f"{a.sub}: acknowledged {op.kind} {op.request_id} (parcel "
                             f"{op.uid}) has no audit row: lost from the log")
                    continue
                want = {"actor_sub": a.sub, "actor_role": a.role,
                        "actor_district": a.district if a.role == "officer" else None,
                        "action": action_of[op.kind], "collection": a.collection,
                        "district_code": a.district, "parcel_uid": op.uid}
                got = {k: row[k] for k in want}
                if got != want:
                    res.find(f"{a.sub}: audit row of {op.request_id} says {got}, "
                             f"expected {want}")
                if etag(row["before"]) != op.before_etag:
                    res.find(f"{a.sub}: audit 'before' of {op.request_id} is not the version "
                             "the client replaced/retired")
                if op.kind != "delete" and etag(row["after"]) != op.after_etag:
                    res.find(f"{a.sub}: audit 'after' of {op.request_id} is not the answer "
                             "the client got")
                if op.kind == "delete" and row["after"] is not None:
                    res.find(f"{a.sub}: audit 'after' of retire {op.request_id} is not null")
            # The parcels this client's writes leave behind.
            created = [op for op in applied if op.kind == "create"]
            last: dict[int, Op] = {}
            for op in applied:
                last[op.uid] = op
            live = {uid: op for uid, op in last.items() if op.kind != "delete"}
            expected_by_district[a.district] += len(live)
            parcels = conn.execute(
                "SELECT uid, parcel_no, status FROM cadastre.parcel WHERE district_code = %s "
                "AND commune_code = %s AND sheet_no = %s",
                (a.district, a.template.commune_code, a.sheet)).fetchall()
            if len(parcels) != len(created):
                res.find(f"{a.sub}: {len(parcels)} parcel rows on sheet {a.sheet}, "
                         f"{len(created)} creates acknowledged")
            by_uid = {r[0]: r for r in parcels}
            for uid, op in last.items():
                row = by_uid.get(uid)
                want_status = "historic" if op.kind == "delete" else "current"
                if row is None:
                    res.find(f"{a.sub}: parcel {uid} is missing from cadastre.parcel")
                elif row[2] != want_status:
                    res.find(f"{a.sub}: parcel {uid} is {row[2]}, expected {want_status}")
            for uid, op in live.items():
                public = conn.execute(
                    "SELECT to_jsonb(v) - 'geom' || jsonb_build_object('geometry', "
                    "ST_AsGeoJSON(v.geom, 9)::jsonb) FROM publish.parcels v "
                    "WHERE v.id = %s AND v.district_code = %s", (uid, a.district)).fetchone()
                if public is None or etag(public[0]) != op.after_etag:
                    res.find(f"{a.sub}: published parcel {uid} is not the last version the "
                             f"client wrote ({op.request_id})")
            uids = sorted(last)
            history = dict(conn.execute(
                "SELECT uid, count(*) FROM cadastre.parcel_history WHERE uid = ANY(%s) "
                "GROUP BY uid", (uids,)).fetchall())
            events = Counter({(r[0], r[1]): r[2] for r in conn.execute(
                "SELECT parcel_uid, kind, count(*) FROM cadastre.parcel_event "
                "WHERE district_code = %s AND parcel_uid = ANY(%s) GROUP BY 1, 2",
                (a.district, uids)).fetchall()})
            for uid in uids:
                ops = [op for op in applied if op.uid == uid]
                n_replace = sum(op.kind == "replace" for op in ops)
                n_delete = sum(op.kind == "delete" for op in ops)
                if history.get(uid, 0) != n_replace + n_delete:
                    res.find(f"{a.sub}: parcel {uid} has {history.get(uid, 0)} history rows, "
                             f"expected {n_replace + n_delete}")
                want_events = {"create": 1, "update": n_replace, "retire": n_delete}
                got_events = {k: events.get((uid, k), 0) for k in want_events}
                if got_events != want_events:
                    res.find(f"{a.sub}: parcel {uid} events {got_events}, "
                             f"expected {want_events}")
        counts = dict(conn.execute(
            "SELECT district_code, parcel_count FROM publish.districts").fetchall())
        for d in plan.write_districts:
            want = plan.initial_counts[d] + expected_by_district[d]
            if counts.get(d) != want:
                res.find(f"district {d}: published count {counts.get(d)}, expected {want} "
                         f"({plan.initial_counts[d]} samples + {expected_by_district[d]} "
                         "live load-test parcels)")
        other = conn.execute(
            "SELECT count(*) FROM cadastre.parcel WHERE sheet_no >= %s AND "
            "NOT (sheet_no - %s = ANY(%s))",
            (SHEET_BASE, SHEET_BASE, [led.actor.index for led in ledgers])).fetchone()[0]
        if other:
            res.find(f"{other} parcel rows on load-test sheets that no client wrote")
    res.checked = [
        "each acknowledged write has exactly one audit.write_log row (by request id)",
        "no audit row for a request no client sent",
        "audit actor (sub, role, district), action, collection, district, parcel id",
        "audit before = the version the client replaced/retired; after = the answer it got "
        "(compared by ETag)",
        "one api load run per write, run_by = the client's sub",
        "parcel rows per client sheet = acknowledged creates (none lost or doubled)",
        "status of each parcel = its last write (current / historic)",
        "published row of each live parcel = the last version its client wrote",
        "parcel_history rows = replaces + retires; events create/update/retire per parcel",
        "published district counts = samples + live load-test parcels",
    ]
    return res


# --------------------------------------------------------------------------- the run


def start_server(db: BenchDB, work: Path, secret: str) -> Server:
    server = platform_server(db, work)
    server.env["LIS_AUTH_SECRET"] = secret
    server.env.pop("LIS_AUTH_JWKS_URL", None)
    server.log_path = work / "logs" / "platform.log"
    server.start()
    return server


def server_log_problems(server: Server) -> list[str]:
    """Tracebacks and errors the server logged during the run (5xx come with one)."""
    try:
        text = server.log_path.read_text(errors="replace")
    except OSError:
        return []
    lines = [ln for ln in text.splitlines()
             if "Traceback" in ln or "ERROR" in ln or "deadlock" in ln.lower()]
    return lines[:20]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wall0 = time.monotonic()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    started_at = datetime.now(UTC)
    machine_info = machine.describe(work)
    log(f"{args.clients} clients, {args.duration:g} s, write share {args.write_share:g}; "
        f"load average {machine_info['load_average_start']}")
    db: BenchDB | None = None
    server: Server | None = None
    try:
        log("database: own cluster, fresh database, migrate")
        db = database.open_database(work / "pg", fresh=True, dbname=DBNAME)
        log("loading data/samples (lis load samples)")
        load_samples(db, work)
        plan = build_plan(db)
        versions = machine.versions(db)
        secret = secrets.token_urlsafe(48)
        server = start_server(db, work, secret)
        actors = make_actors(plan, secret, args.clients)
        log(f"platform on {server.base}; write districts {plan.write_districts}")
        run = Run(server.base, plan, actors, args)
        load_before = machine.load_average()
        asyncio.run(run.run())
        load_after = machine.load_average()
        log(f"{run.sent} requests in {run.seconds:.1f} s; checking integrity")
        server.wait_quiet(30.0)
        integrity = check_integrity(db, run.ledgers, plan)
        figures = run.figures()
        errors = sum(f["errors"] for f in figures)
        problems = server_log_problems(server)
        passed = errors == 0 and integrity.ok and not run.cut
        result = {
            "date": started_at.isoformat(timespec="seconds"),
            "command": "python -m bench.loadtest " + " ".join(argv if argv is not None
                                                              else sys.argv[1:]),
            "clients": args.clients, "duration_s": args.duration,
            "write_share": args.write_share, "max_requests": args.max_requests,
            "seconds": round(run.seconds, 2), "requests": run.sent, "cut": run.cut,
            "machine": {**machine_info, "load_average_before_load": load_before,
                        "load_average_after_load": load_after,
                        "load_average_end": machine.load_average()},
            "versions": versions,
            "write_districts": plan.write_districts,
            "actors": {"officers": sum(a.role == "officer" for a in actors),
                       "admins": sum(a.role == "admin" for a in actors)},
            "figures": figures, "errors": errors,
            "integrity": integrity.to_json(),
            "server_log_problems": problems,
            "passed": passed,
            "wall_s": round(time.monotonic() - wall0, 1),
        }
        loadtest_report.write(result, args.out)
        log(f"wrote {args.out} and {args.out.with_suffix('.json')}")
        log(("PASS" if passed else "FAIL") + f": {errors} errors, integrity "
            f"{'ok' if integrity.ok else f'{len(integrity.findings)} findings'}")
        for f in integrity.findings[:10]:
            log(f"  integrity: {f}")
        return 0 if passed else 1
    except (ServerError, RuntimeError, subprocess.SubprocessError, OSError) as exc:
        log(f"could not run: {type(exc).__name__}: {exc}")
        return 2
    finally:
        if server is not None:
            server.stop()
        if db is not None and not args.keep:
            with contextlib.suppress(Exception):
                database.drop_database(db)
            db.stop()


if __name__ == "__main__":
    sys.exit(main())
