"""``lis serve`` runs several worker processes (``LIS_WORKERS``, default one per core):
a heavy request on one leaves the others to answer. Started as a deployment starts it
(application and public roles only), stopped as a service manager stops it (SIGTERM)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL

from support import free_port, role_env, serving


def children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found |= {int(c) for c in text}
    return found


def test_two_workers_serve_and_stop_together(api_db_url: URL, api_var_dir: Path,
                                             tmp_path: Path) -> None:
    port = free_port()
    roles = role_env(api_db_url)
    del roles["LIS_OWNER_DATABASE_URL"]
    env = {**os.environ, **roles, "PORT": str(port), "HOST": "127.0.0.1",
           "LIS_VAR_DIR": str(api_var_dir), "LIS_WORKERS": "2"}
    log = tmp_path / "serve.log"
    with serving(env, log, timeout_s=120) as served:
        proc, base = served.proc, served.base
        assert "workers        2" in log.read_text()
        workers = [c for c in children(proc.pid)
                   if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]
        assert len(workers) == 2, children(proc.pid)
        with httpx.Client(timeout=30) as client:
            statuses = {client.get(f"{base}/collections/parcels-001/items",
                                   params={"limit": 2}).status_code for _ in range(20)}
        assert statuses == {200}
        assert "WARNING" not in log.read_text()  # the roles are separate: nothing to warn
        proc.send_signal(signal.SIGTERM)  # as a service manager stops it
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("the server did not stop on SIGTERM")
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or \
            "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
