"""Loading the same GeoPackage two ways: our ETL (``lis load parcels``) vs ``ogr2ogr``.

Each loader runs as a child process; a sampler adds up the resident memory of the child
and all its descendants every 50 ms (``/usr/bin/time -v`` reports only the largest single
process, and ``lis`` is one process anyway, but ogr2ogr is measured the same way). The
PostgreSQL server's own memory is not counted for either: it is the same server.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import os
import re
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
import pyogrio

from bench.database import BenchDB
from cadastre import samplegen

SAMPLE_S = 0.05


@dataclass
class LoadResult:
    tool: str
    rows: int
    seconds: float
    peak_rss_mb: float
    returncode: int
    output_tail: str
    rows_in_db: int | None = None
    steps_s: dict[str, float] | None = None  # the loader's seconds per step (ours only)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict:
        return {**asdict(self), "rows_per_s": self.rows_per_s}


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def run_measured(argv: list[str], env: dict[str, str], timeout_s: float, log_path: Path
                 ) -> tuple[float, float, int, str]:
    """(wall seconds, peak RSS MB of the process tree, return code, output tail)."""
    peak = 0
    with log_path.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        ps = psutil.Process(proc.pid)
        deadline = started + timeout_s
        timed_out = False
        while proc.poll() is None:
            peak = max(peak, _tree_rss(ps))
            if time.perf_counter() > deadline:
                proc.kill()
                proc.wait()
                timed_out = True
                break
            time.sleep(SAMPLE_S)
        seconds = time.perf_counter() - started
    tail = log_path.read_text(errors="replace")[-1500:]
    if timed_out:
        tail += f"\n[bench] killed after the {timeout_s:.0f} s limit"
    return seconds, peak / 2**20, -9 if timed_out else proc.returncode, tail


STEPS_LINE = re.compile(r"seconds per step[^:]*: (.*)$", re.MULTILINE)


def parse_steps(output: str) -> dict[str, float] | None:
    """The loader's own "seconds per step" line (``cadastre.loader``), as a dict."""
    found = STEPS_LINE.findall(output)
    if not found:
        return None
    steps = {}
    for part in found[-1].split(", "):
        name, _, value = part.rpartition(" ")
        with contextlib.suppress(ValueError):
            steps[name] = float(value)
    return steps


def load_with_etl(db: BenchDB, lis: list[str], path: Path, rows: int, timeout_s: float,
                  log_dir: Path, tool: str = "lis load parcels (our ETL)",
                  log_name: str = "load-etl.log") -> LoadResult:
    env = {**os.environ, "DATABASE_URL": db.sqlalchemy_url}
    log_path = log_dir / log_name
    seconds, peak, rc, tail = run_measured([*lis, "load", "parcels", str(path)],
                                           env, timeout_s, log_path)
    with db.connect() as conn:
        in_db = conn.execute("SELECT count(*) FROM cadastre.parcel "
                             "WHERE status = 'current'").fetchone()[0]
    return LoadResult(tool, rows, seconds, peak, rc, tail, in_db,
                      parse_steps(log_path.read_text(errors="replace")))


CHANGED_EVERY = 100  # the re-delivery changes the stated area of every 100th parcel


def redelivery_file(dataset: Path, rows: int, work: Path) -> tuple[Path, int]:
    """The first district of the national file delivered again (its features are written
    first, ``bench.data``), 1 % of its parcels with a changed stated area, with the
    national file's sidecar: (the file, its parcels). What an office sends most days."""
    frame = pyogrio.read_dataframe(dataset, max_features=rows)
    district = frame["MaXa"].map(commune_districts())
    frame = frame[district == district.iloc[0]]
    changed = frame.index[::CHANGED_EVERY]
    frame.loc[changed, "DienTich"] = (frame.loc[changed, "DienTich"] + 0.5).round(1)
    out = work / f"redelivery_{len(frame)}.gpkg"
    out.unlink(missing_ok=True)
    pyogrio.write_dataframe(frame, out, layer="thua_dat", driver="GPKG")
    sidecar = dataset.with_name(dataset.name + ".parcels.yaml")
    if sidecar.exists():
        out.with_name(out.name + ".parcels.yaml").write_text(sidecar.read_text())
    return out, len(frame)


@functools.cache
def commune_districts() -> dict[str, str]:
    """commune code -> district code, from the reference catalogue."""
    with (samplegen.REFERENCE_DIR / "admin_units_pre2025.csv").open(
            encoding="utf-8", newline="") as f:
        return {r["commune_code"]: r["district_code"] for r in csv.DictReader(f)}


def load_with_ogr2ogr(db: BenchDB, path: Path, rows: int, timeout_s: float, log_dir: Path
                      ) -> LoadResult:
    """``ogr2ogr -f PostgreSQL`` into schema ``bench_ogr`` (dropped first and afterwards)."""
    with db.connect(autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench_ogr CASCADE")
        conn.execute("CREATE SCHEMA bench_ogr")
    env = {**os.environ, "PGPASSWORD": db.password}
    argv = ["ogr2ogr", "-f", "PostgreSQL", db.ogr_pg, str(path), "-nln", "bench_ogr.parcels",
            "-lco", "GEOMETRY_NAME=geom", "-t_srs", "EPSG:4326"]
    seconds, peak, rc, tail = run_measured(argv, env, timeout_s, log_dir / "load-ogr2ogr.log")
    in_db = None
    with db.connect(autocommit=True) as conn:
        if rc == 0:
            in_db = conn.execute("SELECT count(*) FROM bench_ogr.parcels").fetchone()[0]
        conn.execute("DROP SCHEMA IF EXISTS bench_ogr CASCADE")
    return LoadResult("ogr2ogr -f PostgreSQL", rows, seconds, peak, rc, tail, in_db)
