"""Helpers shared by the test modules (kept out of conftest so modules can import them)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine

from cadastre.merge import refresh_district_summary
from landplatform.db import make_engine
from landplatform.migrate import upgrade
from landplatform.roles import APP, OWNER, PUBLIC, ROLES, bootstrap
from lis import MIGRATIONS

PROJECT = Path(__file__).resolve().parent.parent
SAMPLES = PROJECT / "data" / "samples"
# The local token issuer's secret of the session `api` server (tests mint tokens with it).
TEST_AUTH_SECRET = "test-only-secret-" + "x" * 32


# The platform roles' passwords on the test server (roles are cluster-wide).
TEST_ROLE_PASSWORDS = {role: f"test-{role}-pw" for role in ROLES}


# The national field names of the restricted attributes in a parcel delivery.
RESTRICTED_FIELDS = ("TenChu", "SoCCCD", "SoGCN")
# ... and in its holders file (``<stem>.chu_su_dung.csv``), where there is one.
HOLDER_FIELDS = ("TenChu", "SoGiayTo")


WORDS = re.compile(r"\w+(?: \w+)*")
MAX_WORDS = 8  # a holder's name or number is at most this many words


def found_in(secrets: set[str], text_all: str) -> list[str]:
    """The secrets that occur in ``text_all``, in one pass over it: the samples name tens
    of thousands of holders and the crawl is hundreds of MB, too much for a substring
    search each. A secret of words (a name, a number) is found when its words occur
    together as whole words; anything else (punctuation inside) is searched as is. A
    secret inside a longer word ('123' in '91234') is not a leak of it."""
    phrases: set[str] = set()
    for run in WORDS.findall(text_all):
        words = run.split(" ")
        for i in range(len(words)):
            for j in range(i + 1, min(len(words), i + MAX_WORDS) + 1):
                phrases.add(" ".join(words[i:j]))
    simple = {s for s in secrets if WORDS.fullmatch(s) and s.count(" ") < MAX_WORDS}
    return sorted({s for s in simple if s in phrases}
                  | {s for s in secrets - simple if s in text_all})


def restricted_values(manifest: list[dict]) -> set[str]:
    """Every owner name, ID number and certificate serial in the sample deliveries (the
    parcel files and their holders files).

    A name that is also one of the sample price tables' public street names (Đường Nguyễn
    Văn Linh in Đà Nẵng is named after a person, and the synthetic owners can share that
    name) is left out: it rightly appears in land-prices responses as a road.
    """
    import pyogrio

    from valuation.samplegen import ROADS

    streets = " ".join(road.name for roads in ROADS.values() for road in roads)
    import pandas as pd

    from cadastre.holders import holders_path

    values: set[str] = set()
    for entry in manifest:
        frame = pyogrio.read_dataframe(SAMPLES / entry["file"], read_geometry=False)
        for national in RESTRICTED_FIELDS:
            column = entry["fields"][national]
            values |= {str(v) for v in frame[column].dropna() if str(v).strip()}
        beside = holders_path(SAMPLES / entry["file"])  # every holder of a parcel
        if beside is not None:
            holders = pd.read_csv(beside, dtype=str, keep_default_na=False,
                                  encoding="utf-8-sig")
            for national in HOLDER_FIELDS:
                values |= {v for v in holders.get(national, []) if v.strip()}
    return {v for v in values if v not in streets}


def sample_window(district: str, half_deg: float = 0.0025) -> str:
    """A bbox (lon/lat, ``half_deg`` each way) round the middle of a sample district's
    parcels: where its coverages and tiles have data, read from the sample, not typed."""
    import json

    import pyogrio
    from pyproj import Transformer

    entry = next(e for e in json.loads((SAMPLES / "manifest.json").read_text(
        encoding="utf-8")) if e["district_code"] == district)
    x0, y0, x1, y1 = pyogrio.read_info(SAMPLES / entry["file"], layer=entry["layer"],
                                       force_total_bounds=True)["total_bounds"]
    if entry["epsg"] != 4326:
        (x0, x1), (y0, y1) = Transformer.from_crs(entry["epsg"], 4326, always_xy=True
                                                  ).transform([x0, x1], [y0, y1])
    lon, lat = (x0 + x1) / 2, (y0 + y1) / 2
    return f"{lon - half_deg:.5f},{lat - half_deg:.5f},{lon + half_deg:.5f},{lat + half_deg:.5f}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_database(server: URL, name: str) -> URL:
    """A fresh, migrated database ``name`` (dropped first if a previous run left it), set
    up as a deployment is: the three roles and the database handed to the owner
    (``landplatform.roles``), then migrated as the owner. Returns the superuser's URL, for
    the tests' own setup and checks; ``role_url``/``role_env`` give the platform's.

    With ``LIS_TEST_TEMPLATE_DB`` (a database on the test server, migrated by an earlier
    version of the platform) every test database starts as a copy of it and is then
    migrated by this version: the suite runs on the schema an existing install upgrades
    to, not only on a schema made from scratch (docs/ARCHITECTURE.md, "The contract":
    how this was run for the move of the migrations into the domains' folders).
    """
    conninfo = server.set(drivername="postgresql").render_as_string(hide_password=False)
    template = os.environ.get("LIS_TEST_TEMPLATE_DB")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if template:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)))
        else:
            conn.execute(f'CREATE DATABASE "{name}"')
    url = server.set(database=name)
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(
            hide_password=False), autocommit=True) as conn:
        bootstrap(conn, TEST_ROLE_PASSWORDS)
    engine = make_engine(role_url(url, OWNER))
    upgrade(engine, MIGRATIONS)
    engine.dispose()
    return url


def role_url(url: URL, role: str) -> URL:
    """The URL of platform role ``role`` on the database of (superuser) ``url``."""
    return url.set(username=role, password=TEST_ROLE_PASSWORDS[role])


def role_env(url: URL) -> dict[str, str]:
    """The environment a deployment sets: one URL per role, none of them a superuser."""
    def render(role: str) -> str:
        return role_url(url, role).render_as_string(hide_password=False)

    return {"DATABASE_URL": render(APP), "LIS_OWNER_DATABASE_URL": render(OWNER),
            "LIS_PUBLIC_DATABASE_URL": render(PUBLIC)}


def data_snapshot(engine: Engine) -> dict[str, object]:
    """Row counts and a content hash of every data table: equal snapshots = unchanged."""
    tables = ["cadastre.parcel", "cadastre.parcel_history", "cadastre.parcel_land_use",
              "cadastre.parcel_event", "cadastre.map_sheet", "cadastre.district_summary",
              "restricted.party", "restricted.certificate", "restricted.land_right"]
    snap: dict[str, object] = {}
    with engine.connect() as conn:
        for table in tables:
            snap[table] = tuple(conn.execute(text(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                f" FROM {table} t")).one())
    return snap


@contextmanager
def free_ground(engine: Engine, where: str, params: dict | None = None) -> Iterator[None]:
    """Take the current parcels ``where`` selects out of the cadastre for a test (their
    status only, no history), so test parcels may be laid where they lie without
    overlapping a current parcel (which every write path refuses); put them back after."""
    with engine.begin() as conn:
        freed = conn.execute(text(
            f"UPDATE cadastre.parcel SET status = 'historic' WHERE status = 'current' "
            f"AND ({where}) RETURNING district_code, uid"), params or {}).all()
        refresh_district_summary(conn, sorted({d for d, _ in freed}))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE cadastre.parcel SET status = 'current', valid_to = NULL "
                              "WHERE uid = ANY(:uids)"), {"uids": [u for _, u in freed]})
            refresh_district_summary(conn, sorted({d for d, _ in freed}))


@dataclass(frozen=True)
class Served:
    base: str  # http://127.0.0.1:PORT
    proc: subprocess.Popen


@contextmanager
def serving(env: dict[str, str], log: Path, timeout_s: float = 180) -> Iterator[Served]:
    """A real ``lis serve`` with ``env`` (which names PORT) on 127.0.0.1, healthy, yielded
    with its process; stopped afterwards (SIGTERM, then SIGKILL after 10 s)."""
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "lis.cli", "serve"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{env['PORT']}"
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not become healthy: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield Served(base, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
