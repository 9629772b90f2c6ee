"""`lis up` on the embedded default (no DATABASE_URL): a private PostGIS cluster under the
var folder, migrated, samples loaded; a second run reuses everything and loads nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from landplatform.pgcluster import EmbeddedCluster
from support import SAMPLES, free_port


def lis(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lis.cli", *args], env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(bool(os.environ.get("LIS_TEST_DATABASE_URL")),
                    reason="uses the embedded cluster")
def test_up_twice_reuses_and_loads_nothing_twice(tmp_path: Path, manifest: list[dict]) -> None:
    plans = json.loads((SAMPLES / "plans" / "manifest.json").read_text(encoding="utf-8"))
    boundaries = json.loads((SAMPLES / "boundaries" / "manifest.json").read_text(
        encoding="utf-8"))
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(LIS_VAR_DIR=str(tmp_path / "var"), LIS_PG_PORT=str(free_port()))
    try:
        first = lis("up", "--no-serve", env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "embedded cluster started" in first.stdout
        assert "Schema: migrated" in first.stdout
        for entry in manifest:  # (other sample tables report "loaded as run" too)
            assert f"{entry['file']}: loaded as run" in first.stdout
        assert first.stdout.count(": loaded plan run") == len(plans)
        assert first.stdout.count(": loaded boundaries run") == len(boundaries)
        # the boundaries first: the parcels are checked against them
        assert first.stdout.index(": loaded boundaries run") < first.stdout.index(
            ": loaded as run")

        second = lis("up", "--no-serve", env=env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "embedded cluster running" in second.stdout
        assert "Schema: up to date" in second.stdout
        for entry in manifest:
            assert f"Samples: {entry['file']} already loaded" in second.stdout
        for plan in plans:
            assert f"Samples: plan {plan['file']} already loaded" in second.stdout
        for entry in boundaries:
            assert f"Samples: boundaries {entry['file']} already loaded" in second.stdout
        assert "loaded as run" not in second.stdout
        assert "loaded boundaries run" not in second.stdout
        assert "loaded plan run" not in second.stdout

        # the embedded cluster has the three roles: each URL logs in as its own
        import psycopg

        for role in ("app", "owner", "public"):
            url = lis("db", "url", "--role", role, env=env).stdout.strip()
            with psycopg.connect(url.replace("+psycopg", ""), connect_timeout=10) as conn:
                user, superuser = conn.execute(
                    "SELECT current_user, rolsuper FROM pg_roles "
                    "WHERE rolname = current_user").fetchone()
            assert (user, superuser) == (f"lis_{role}", False)

        status = lis("db", "status", env=env)
        assert "is running" in status.stdout
        lis("db", "stop", env=env)
        assert "is stopped" in lis("db", "status", env=env).stdout
    finally:
        # the cluster may have been relocated out of pytest's private tmp: remove it all
        EmbeddedCluster(Path(env["LIS_VAR_DIR"]) / "pg", int(env["LIS_PG_PORT"])).destroy()
