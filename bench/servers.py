"""Start and stop the servers under test: each a child process on its own 127.0.0.1 port.

Only one server runs at a time, so none competes with another for the two cores. A
server is stopped through its own process group (it was started in a new session), so
uvicorn's workers and reloaders, if any, go with it; nothing else is signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.database import BenchDB, free_port

READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 15.0


class ServerError(RuntimeError):
    """A server did not start; the message carries the tail of its log."""


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready_path: str = "/"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2500:]
        except OSError:
            return ""

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        env = {k: v.replace("{port}", str(self.port)) for k, v in self.env.items()}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=10.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise ServerError(f"{self.name} exited with {self.proc.returncode}:\n"
                                      f"{self._log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.base + self.ready_path).status_code == 200:
                        return
                time.sleep(0.5)
        self.stop()
        raise ServerError(f"{self.name} not ready after {timeout_s:.0f} s:\n{self._log_tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT_S)

    def wait_quiet(self, max_s: float, busy_percent: float = 20.0) -> float:
        """Wait (at most ``max_s``) until the server's process tree stops using CPU: a
        server may still be building answers for clients that already gave up."""
        import psutil

        started = time.monotonic()
        if self.proc is None:
            return 0.0
        try:
            ps = psutil.Process(self.proc.pid)
            while time.monotonic() - started < max_s:
                procs = [ps, *ps.children(recursive=True)]
                before = sum(sum(p.cpu_times()[:2]) for p in procs)
                time.sleep(0.3)
                after = sum(sum(p.cpu_times()[:2]) for p in procs)
                if (after - before) / 0.3 * 100 < busy_percent:
                    break
        except psutil.Error:
            pass
        return time.monotonic() - started

    def rss_mb(self) -> float | None:
        """Resident memory of the server's process tree now (after its cells)."""
        if self.proc is None:
            return None
        import psutil

        try:
            ps = psutil.Process(self.proc.pid)
            procs = [ps, *ps.children(recursive=True)]
            return sum(p.memory_info().rss for p in procs) / 2**20
        except psutil.Error:
            return None


def platform_server(db: BenchDB, work: Path, workers: int | None = 1,
                    name: str = "platform") -> Server:
    """``lis serve`` (this checkout, this Python) with its generated config under work/.

    ``workers``: its processes (``LIS_WORKERS``); 1 beside the peers' one process each,
    None for the default configuration (one per core, at most 4), as a user starts it.
    """
    env = {**os.environ, "DATABASE_URL": db.sqlalchemy_url, "HOST": "127.0.0.1",
           "PORT": "{port}", "LIS_VAR_DIR": str(work / "lis-var")}
    env.pop("LIS_PUBLIC_URL", None)
    env.pop("LIS_WORKERS", None)
    if workers is not None:
        env["LIS_WORKERS"] = str(workers)
    return Server(name, [sys.executable, "-m", "lis.cli", "serve"], env,
                  work / "logs" / f"{name}.log", ready_path="/health")
