"""Tests for the embedded PostGIS cluster (landplatform.pgcluster).

They run real initdb/pg_ctl, so they need the PostgreSQL server and PostGIS packages; without
them the module is skipped with the install hint. One cluster is shared by most tests (initdb
plus CREATE EXTENSION postgis costs a few seconds); tests that change its state restore it.
Note that pytest's basetemp (/tmp/pytest-of-<user>) is mode 700, so when the tests run as root
the clusters are relocated under /var/lib/landplatform, which exercises that path too.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from landplatform import pgcluster
from landplatform.pgcluster import ClusterError, EmbeddedCluster

PROJECT_DIR = Path(__file__).resolve().parent.parent

try:
    _BINDIR = pgcluster.find_pg_bindir()
except ClusterError as exc:  # pragma: no cover - depends on the machine
    pytest.skip(f"no PostgreSQL server binaries: {exc}", allow_module_level=True)
if not pgcluster.postgis_available(_BINDIR):  # pragma: no cover
    pytest.skip(f"PostGIS missing; {pgcluster.INSTALL_HINT}", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    """A running cluster shared by the module; destroyed even if setup or a test fails."""
    c = EmbeddedCluster(tmp_path_factory.mktemp("pg") / "cluster", free_port())
    try:
        c.ensure_running()
        yield c
    finally:
        c.destroy()


@pytest.fixture
def fresh_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    """An uninitialised cluster folder, destroyed after the test."""
    c = EmbeddedCluster(tmp_path_factory.mktemp("pgfresh") / "cluster", free_port())
    try:
        yield c
    finally:
        c.destroy()


def test_ensure_running_starts_cluster(cluster: EmbeddedCluster) -> None:
    assert cluster.is_running()
    assert cluster.initialized
    assert cluster.running_port() == cluster.port
    assert cluster.url.startswith("postgresql+psycopg://lis:")
    assert cluster.url.endswith(f"@127.0.0.1:{cluster.port}/lis")
    if cluster.relocated:
        assert cluster.storage_dir.parent == pgcluster.RELOCATION_BASE
        assert cluster.pointer_file.read_text().startswith(f"{cluster.storage_dir}\n")


def test_ensure_running_is_idempotent(cluster: EmbeddedCluster) -> None:
    pid_before = (cluster.data_dir / "postmaster.pid").read_text().splitlines()[0]
    assert cluster.ensure_running() == cluster.url
    assert cluster.ensure_running() == cluster.url
    # A fresh instance (as another process would create) sees the same cluster.
    again = EmbeddedCluster(cluster.root, cluster.port)
    assert again.ensure_running() == cluster.url
    assert again.storage_dir == cluster.storage_dir
    pid_after = (cluster.data_dir / "postmaster.pid").read_text().splitlines()[0]
    assert pid_after == pid_before, "server was restarted"


def test_postgis_works(cluster: EmbeddedCluster) -> None:
    with psycopg.connect(**cluster.conninfo()) as conn:
        version = conn.execute("SELECT postgis_full_version()").fetchone()[0]
        wkt = conn.execute("SELECT ST_AsText(ST_Buffer(ST_Point(0, 0), 1, 1))").fetchone()[0]
    assert version.startswith("POSTGIS=")
    assert wkt.startswith("POLYGON")


def test_password_file_is_private(cluster: EmbeddedCluster) -> None:
    mode = stat.S_IMODE(cluster.password_file.stat().st_mode)
    assert mode == 0o600
    assert cluster.password_file.stat().st_uid == os.geteuid()  # readable by the caller
    assert len(cluster.password) >= 24


def test_url_connects_with_sqlalchemy(cluster: EmbeddedCluster) -> None:
    engine = sa.create_engine(cluster.url)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT current_user, current_database(), "
                                       "current_setting('server_encoding')")).one()
    finally:
        engine.dispose()
    assert tuple(row) == ("lis", "lis", "UTF8")


def test_stop_then_ensure_running_keeps_data(cluster: EmbeddedCluster) -> None:
    with psycopg.connect(**cluster.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE TABLE keep_me (id int PRIMARY KEY, geom geometry(Point, 25832))")
        conn.execute("INSERT INTO keep_me VALUES (1, ST_SetSRID(ST_Point(500000, 5700000), "
                     "25832))")
    cluster.stop()
    assert not cluster.is_running()
    cluster.stop()  # tolerant when already stopped
    assert cluster.ensure_running() == cluster.url
    with psycopg.connect(**cluster.conninfo()) as conn:
        assert conn.execute("SELECT ST_X(geom) FROM keep_me").fetchone()[0] == 500000


def test_port_in_use_is_explained(cluster: EmbeddedCluster) -> None:
    cluster.stop()
    blocker = socket.socket()
    try:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", cluster.port))
        blocker.listen()
        with pytest.raises(ClusterError, match=rf"\b{cluster.port}\b") as info:
            cluster.ensure_running()
        assert "LIS_PG_PORT" in str(info.value)
        assert not cluster.is_running()
    finally:
        blocker.close()
    cluster.ensure_running()
    assert cluster.is_running()


def test_cli_status_and_url(cluster: EmbeddedCluster, capsys: pytest.CaptureFixture) -> None:
    args = ["--root", str(cluster.root), "--port", str(cluster.port)]
    assert pgcluster.main(["status", *args]) == 0
    assert capsys.readouterr().out.startswith(f"running: 127.0.0.1:{cluster.port} ")
    assert pgcluster.main(["url", *args]) == 0
    assert capsys.readouterr().out.strip() == cluster.url


@pytest.mark.skipif(os.geteuid() != 0, reason="relocation only happens when running as root")
def test_relocation_decision(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    hidden = EmbeddedCluster(closed / "pg", free_port())
    assert hidden.storage_dir == hidden.relocation_target()
    assert hidden.storage_dir.parent == pgcluster.RELOCATION_BASE
    with tempfile.TemporaryDirectory(dir="/tmp") as open_dir:  # only /tmp (1777) above it
        visible = EmbeddedCluster(Path(open_dir), free_port())
        assert visible.storage_dir == Path(open_dir).resolve()
        assert not visible.relocated


def test_concurrent_ensure_running(fresh_cluster: EmbeddedCluster) -> None:
    code = (
        "import sys; from pathlib import Path; from landplatform.pgcluster import "
        "EmbeddedCluster; print(EmbeddedCluster(Path(sys.argv[1]), int(sys.argv[2]))"
        ".ensure_running())"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    argv = [sys.executable, "-c", code, str(fresh_cluster.root), str(fresh_cluster.port)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    assert {out.strip() for out, _ in results} == {fresh_cluster.url}
    assert fresh_cluster.is_running()


def test_destroy_removes_cluster(fresh_cluster: EmbeddedCluster) -> None:
    fresh_cluster.init()
    fresh_cluster.start()
    storage = fresh_cluster.storage_dir
    assert fresh_cluster.is_running()
    fresh_cluster.destroy()
    assert not fresh_cluster.root.exists()
    assert not storage.exists()
    with socket.socket() as sock:  # the server is gone, so its port is free again
        sock.bind(("127.0.0.1", fresh_cluster.port))
