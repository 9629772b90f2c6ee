"""Shared fixtures: one throwaway PostGIS cluster per test session, real databases in it.

Set LIS_TEST_DATABASE_URL to a server you own (a maintenance database URL, e.g.
postgresql://user:pw@host/postgres) to use it instead of the embedded cluster; the tests
create and drop their own databases there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL, Engine

from landplatform.db import make_engine, normalise_url
from landplatform.pgcluster import EmbeddedCluster
from support import (
    SAMPLES,
    TEST_AUTH_SECRET,
    create_database,
    free_port,
    role_env,
    serving,
)


@pytest.fixture(scope="session")
def manifest() -> list[dict]:
    data = json.loads((SAMPLES / "manifest.json").read_text(encoding="utf-8"))
    return data["files"] if isinstance(data, dict) else data


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster | None]:
    """The session's throwaway cluster (None when LIS_TEST_DATABASE_URL names a server)."""
    if os.environ.get("LIS_TEST_DATABASE_URL"):
        yield None
        return
    cluster = EmbeddedCluster(tmp_path_factory.mktemp("pg"), free_port())
    try:
        cluster.ensure_running()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def server_url(pg_cluster: EmbeddedCluster | None) -> URL:
    """URL of a PostgreSQL server (maintenance database) the tests may create DBs on."""
    if pg_cluster is None:
        return normalise_url(os.environ["LIS_TEST_DATABASE_URL"])
    return normalise_url(pg_cluster.url)


@pytest.fixture(scope="session")
def api_var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LIS_VAR_DIR of the session's server and of the steps that prepare its database
    (valuation writes the price surfaces the server publishes there)."""
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="session")
def api_db_url(server_url: URL, api_var_dir: Path) -> URL:
    """The database the API tests serve: migrated, with every sample file loaded and every
    sample district valued (as ``lis up`` leaves it)."""
    url = create_database(server_url, "lis_api")
    # loaded as a deployment loads: the application role, no superuser
    env = {**os.environ, **role_env(url), "LIS_VAR_DIR": str(api_var_dir)}
    subprocess.run([sys.executable, "-m", "lis.cli", "load", "samples"], env=env,
                   check=True, capture_output=True, text=True, timeout=300)
    subprocess.run([sys.executable, "-m", "lis.cli", "valuate", "--all", "--quiet"],
                   env=env, check=True, capture_output=True, text=True, timeout=300)
    return url


@pytest.fixture(scope="session")
def api_db(api_db_url: URL) -> Iterator[Engine]:
    engine = make_engine(api_db_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def api(api_db_url: URL, api_var_dir: Path,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a real platform server (``lis serve``) on 127.0.0.1."""
    port = free_port()
    # the server gets the application and public roles' URLs only, as in docker-compose
    roles = role_env(api_db_url)
    del roles["LIS_OWNER_DATABASE_URL"]
    env = {**os.environ, **roles, "PORT": str(port), "HOST": "127.0.0.1",
           "LIS_VAR_DIR": str(api_var_dir),
           "LIS_AUTH_SECRET": TEST_AUTH_SECRET}  # tests mint tokens with it
    log = tmp_path_factory.mktemp("log") / "serve.log"
    try:
        with serving(env, log) as served:
            yield served.base
    except RuntimeError as exc:
        pytest.fail(str(exc))


