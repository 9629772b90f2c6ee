"""The peers: stock pygeoapi (PostgreSQL provider) and tipg, from PyPI, in their own venv.

They live in ``var/bench/venv-peers`` so their pins never meet the platform's. Both are
pointed at the same database and the same ``publish.parcels`` view the platform serves
(plus ``bench.parcels_<district>`` for "one district", which neither can otherwise
restrict to), with their default settings except where noted:

* pygeoapi: limits as the platform's (default 10, max 10,000 items per page);
  MVT-postgresql tiles on the same view as a second provider.
* tipg: ``TIPG_CATALOG_TTL`` raised so a catalogue refresh (every 300 s by default) does
  not land inside a measured cell; ``TIPG_MAX_FEATURES_PER_TILE`` raised from 10,000 so
  its tiles carry every parcel, as the other systems' do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from bench.database import BenchDB
from bench.servers import Server

PEER_PACKAGES = ["pygeoapi", "tipg", "uvicorn", "psycopg2-binary", "sqlalchemy",
                 "geoalchemy2", "pygeofilter", "shapely"]
INSTALL_TIMEOUT_S = 900


def ensure_venv(venv: Path, log: Callable[[str], None]) -> tuple[Path | None, str]:
    """The venv's python (created and filled on first use), or None and why not."""
    python = venv / "bin" / "python"
    marker = venv / ".bench-installed"
    if python.exists() and marker.exists():
        return python, "reused"
    log(f"peers: creating {venv} and installing {' '.join(PEER_PACKAGES)} from PyPI")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                       capture_output=True, timeout=120)
        proc = subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES],
                              capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"venv/pip failed: {exc}"
    if proc.returncode != 0:
        return None, f"pip install failed: {proc.stderr.strip()[-600:]}"
    marker.write_text(" ".join(PEER_PACKAGES) + "\n")
    return python, "installed"


def versions(python: Path) -> dict[str, str]:
    code = ("import importlib.metadata as m, json, sys; "
            "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))")
    names = ["pygeoapi", "tipg", "uvicorn", "sqlalchemy", "psycopg2-binary", "asyncpg",
             "fastapi", "starlette"]
    out = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True,
                         timeout=60)
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError:
        return {}


def _pg_data(db: BenchDB, schema: str) -> dict:
    return {"host": db.host, "port": db.port, "dbname": db.dbname, "user": db.user,
            "password": db.password, "search_path": [schema]}


def pygeoapi_config(db: BenchDB, district: str, view: str, with_tiles: bool) -> dict:
    """A config whose collections are the same view (and the one-district view)."""
    def features(schema: str, table: str) -> dict:
        return {"type": "feature", "name": "PostgreSQL", "data": _pg_data(db, schema),
                "id_field": "id", "table": table, "geom_field": "geom"}

    parcels = {
        "type": "collection", "title": "Cadastral parcels", "description": "publish.parcels",
        "keywords": ["parcels"], "links": [],
        "extents": {"spatial": {"bbox": [102.1, 6.0, 117.9, 23.5],
                                "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
        "providers": [features("publish", "parcels")],
    }
    if with_tiles:
        parcels["providers"].append({
            "type": "tile", "name": "MVT-postgresql", "data": _pg_data(db, "publish"),
            "id_field": "id", "table": "parcels", "geom_field": "geom",
            "options": {"zoom": {"min": 0, "max": 22}},
            "format": {"name": "pbf", "mimetype": "application/vnd.mapbox-vector-tile"},
        })
    one = {**parcels, "title": f"Parcels of district {district}", "description": view,
           "providers": [features("bench", view)]}
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": 0}, "url": "http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8",
            "gzip": False, "languages": ["en-US"], "cors": True, "pretty_print": False,
            "limits": {"default_items": 10, "max_items": 10000, "on_exceed": "throttle"},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                    "attribution": "OpenStreetMap"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {"title": "bench", "description": "stock pygeoapi",
                               "keywords": ["bench"], "keywords_type": "theme",
                               "terms_of_service": "", "url": "http://127.0.0.1"},
            "license": {"name": "CC-BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
            "provider": {"name": "bench", "url": "http://127.0.0.1"},
            "contact": {"name": "bench", "position": "bench", "email": "bench@example.org",
                        "role": "pointOfContact"},
        },
        "resources": {"parcels": parcels, f"parcels-{district}": one},
    }


def pygeoapi_server(python: Path, db: BenchDB, district: str, view: str, work: Path,
                    with_tiles: bool = True) -> Server:
    """Write the config (port filled in at start) and the OpenAPI document, then a Server."""
    server = Server("pygeoapi", [], {}, work / "logs" / "pygeoapi.log")
    config = pygeoapi_config(db, district, view, with_tiles)
    config["server"]["url"] = server.base
    config["server"]["bind"]["port"] = server.port
    cfg_path = work / "pygeoapi" / "config.yml"
    oas_path = work / "pygeoapi" / "openapi.yml"
    cfg_path.parent.mkdir(parents=True, exist_ok=True)
    cfg_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    bindir = python.parent
    proc = subprocess.run([str(bindir / "pygeoapi"), "openapi", "generate", str(cfg_path),
                           "--output-file", str(oas_path)], capture_output=True, text=True,
                          timeout=300, env={"PYGEOAPI_CONFIG": str(cfg_path), "PATH": str(bindir)})
    if proc.returncode != 0:
        raise RuntimeError(f"pygeoapi openapi generate failed: {proc.stderr[-800:]}")
    server.argv = [str(python), "-m", "uvicorn", "pygeoapi.starlette_app:APP",
                   "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning",
                   "--no-access-log"]
    server.env = {"PATH": f"{bindir}:/usr/bin:/bin", "PYGEOAPI_CONFIG": str(cfg_path),
                  "PYGEOAPI_OPENAPI": str(oas_path), "HOME": str(work)}
    return server


def tipg_server(python: Path, db: BenchDB, work: Path) -> Server:
    env = {
        "PATH": f"{python.parent}:/usr/bin:/bin", "HOME": str(work),
        "DATABASE_URL": db.url,
        "TIPG_DB_SCHEMAS": json.dumps(["publish", "bench"]),
        "TIPG_CATALOG_TTL": "86400",
        "TIPG_MAX_FEATURES_PER_TILE": "1000000",
    }
    return Server("tipg", [str(python), "-m", "uvicorn", "tipg.main:app", "--host",
                           "127.0.0.1", "--port", "{port}", "--log-level", "warning",
                           "--no-access-log"], env, work / "logs" / "tipg.log")
