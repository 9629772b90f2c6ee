"""Concurrent clients: N asyncio workers, each one request at a time, for a bounded time.

The same driver runs HTTP requests (aiohttp with a pool of N keep-alive connections to
127.0.0.1) and raw SQL (one psycopg connection per worker), so the two are measured
alike: latency from sending to having the whole body, p50/p99 over the successful
requests, throughput = successful requests / wall time of the cell. Every cell stops at
its deadline or its request cap, whichever comes first; a request in flight at the
deadline is waited for at most ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field

import aiohttp
import psycopg

REQUEST_TIMEOUT_S = 60.0
MAX_ERROR_SAMPLES = 3


@dataclass
class Cell:
    system: str
    kind: str
    clients: int
    status: str = "ok"  # ok | n/a | wrong | failed
    note: str = ""
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    rps: float | None = None
    client_cpu_s: float | None = None
    body_bytes: int = 0  # total over the successful requests (decoded body)
    kb_per_response: float | None = None
    error_samples: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 50 samples is the largest)."""
    k = max(0, min(len(sorted_ms) - 1, int(-(-q * len(sorted_ms) // 1)) - 1))
    return sorted_ms[k]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def drive(call: Callable[[int, object], Awaitable[None]], resources: Sequence[object],
                cell: Cell, duration_s: float, max_requests: int,
                timeout_s: float = REQUEST_TIMEOUT_S) -> Cell:
    """Run ``call(i, resource)`` from one worker per resource until the deadline/cap."""
    latencies: list[float] = []
    counter = iter(range(max_requests))
    cpu0 = _cpu()
    started = time.perf_counter()
    deadline = started + duration_s

    async def worker(res: object) -> None:
        for i in counter:
            if time.perf_counter() >= deadline:
                return
            t0 = time.perf_counter()
            try:
                await asyncio.wait_for(call(i, res), timeout_s)
            except Exception as exc:  # noqa: BLE001 - every failure is a counted error
                cell.errors += 1
                if len(cell.error_samples) < MAX_ERROR_SAMPLES:
                    cell.error_samples.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            else:
                latencies.append((time.perf_counter() - t0) * 1000)

    try:
        await asyncio.wait_for(asyncio.gather(*(worker(r) for r in resources)),
                               duration_s + timeout_s + 10)
    except TimeoutError:
        cell.note = "cell cut at its hard deadline"
    cell.seconds = time.perf_counter() - started
    cell.client_cpu_s = round(_cpu() - cpu0, 2)
    cell.requests = len(latencies) + cell.errors
    if latencies:
        latencies.sort()
        cell.p50_ms = round(percentile(latencies, 0.50), 2)
        cell.p99_ms = round(percentile(latencies, 0.99), 2)
        cell.mean_ms = round(sum(latencies) / len(latencies), 2)
        cell.rps = round(len(latencies) / cell.seconds, 2)
        cell.kb_per_response = round(cell.body_bytes / len(latencies) / 1024, 1)
    else:
        cell.status = "failed"
    return cell


class HttpStatusError(Exception):
    pass


async def http_cell(base: str, paths: Sequence[str], cell: Cell, duration_s: float,
                    max_requests: int) -> Cell:
    """HTTP requests from ``cell.clients`` workers over as many keep-alive connections.

    aiohttp, not httpx: the client shares the 2 cores with the server under test, and
    httpx's async pool spent 2.8 ms of CPU per request at 8 clients and 5.4 ms at 32
    (aiohttp: 0.4 ms), so the client itself, not the servers, capped every small-request
    cell and pulled all ratios towards 1. aiohttp sends ``Accept-Encoding: gzip, deflate``
    and decodes the body, as httpx did; ``body_bytes`` counts decoded bytes.
    """
    connector = aiohttp.TCPConnector(limit=cell.clients, limit_per_host=cell.clients)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as client:
        async def call(i: int, _res: object) -> None:
            async with client.get(paths[i % len(paths)]) as r:
                body = await r.read()
                if not 200 <= r.status < 300:
                    text = body[:160].decode("utf-8", "replace")
                    raise HttpStatusError(f"HTTP {r.status}: {text}")
            cell.body_bytes += len(body)

        return await drive(call, range(cell.clients), cell, duration_s, max_requests)


async def sql_cell(conninfo: dict, statements: Sequence[tuple], cell: Cell,
                   duration_s: float, max_requests: int) -> Cell:
    conns = [await psycopg.AsyncConnection.connect(**conninfo, autocommit=True)
             for _ in range(cell.clients)]
    try:
        async def call(i: int, conn: psycopg.AsyncConnection) -> None:
            stmt, params = statements[i % len(statements)]
            cur = await conn.execute(stmt, params)
            row = await cur.fetchone()
            if row is None or row[0] is None:
                raise ValueError("no result")
            cell.body_bytes += len(row[0])

        return await drive(call, conns, cell, duration_s, max_requests)
    finally:
        for conn in conns:
            await conn.close()
