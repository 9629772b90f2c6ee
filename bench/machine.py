"""What the numbers were measured on: the machine, its load, and every version involved."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import psutil

from bench.database import BenchDB

PROJECT_DIR = Path(__file__).resolve().parent.parent


def _run(argv: list[str], cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _disk(path: Path) -> str:
    usage = shutil.disk_usage(path)
    source = _run(["findmnt", "-no", "SOURCE,FSTYPE", "-T", str(path)]) or "?"
    return f"{source} ({usage.total / 2**30:.0f} GiB, {usage.free / 2**30:.0f} GiB free)"


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def describe(work: Path) -> dict:
    mem = psutil.virtual_memory()
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gib": round(mem.total / 2**30, 1),
        "disk": _disk(work),
        "os": f"{_os_name()}, kernel {platform.release()}",
        "load_average_start": load_average(),
    }


def versions(db: BenchDB) -> dict:
    import aiohttp
    import psycopg

    from landplatform import __version__

    with db.connect() as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
        postgis = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
        geos = conn.execute("SELECT postgis_geos_version()").fetchone()[0]
    commit = _run(["git", "rev-parse", "--short=12", "HEAD"], PROJECT_DIR) or "unknown"
    dirty = bool(_run(["git", "status", "--porcelain", "--untracked-files=no"], PROJECT_DIR))
    return {
        "platform": f"landplatform {__version__}, commit {commit}"
                    + (" + uncommitted changes" if dirty else ""),
        "postgresql": pg,
        "postgis": f"{postgis} (GEOS {geos})",
        "gdal": _run(["ogr2ogr", "--version"]),
        "python": sys.version.split()[0],
        "harness": f"aiohttp {aiohttp.__version__}, psycopg {psycopg.__version__}",
    }
