"""COPY staging: stream validated rows into a temporary table, fast, in bounded memory.

Every loader stages the same way (a chunk of rows at a time as COPY text built column-wise,
sent from a thread while the next chunk is formatted; a streamed load formats a batch in a
producer thread while the connection sends the previous one, ``pipelined``) and then
merges from the stage with set-based SQL of its own; and every loader serialises
concurrent loads of the same keys with a transaction-scoped advisory lock. Neither knows
any table.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from queue import Full, Queue

import numpy as np
import pandas as pd
import shapely
from psycopg import Copy, Cursor
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import text
from sqlalchemy.engine import Connection

COPY_CHUNK_ROWS = 10_000
COPY_QUEUE_BUFFERS = 8
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_scalar(value: object) -> str:
    """One value in COPY text format, as psycopg's text dumpers would write it."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, bool | np.bool_):
        return "t" if value else "f"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    if isinstance(value, shapely.Geometry):
        raise TypeError("geometries are encoded column-wise")
    if isinstance(value, datetime | date | Decimal):
        return value.isoformat() if not isinstance(value, Decimal) else str(value)
    raise TypeError(f"no COPY text form for {type(value).__name__}")


def _ewkb_hex(geoms: np.ndarray, srid: int) -> np.ndarray:
    """Hex EWKB with ``srid``, Polygons promoted to one-part MultiPolygons (the stage
    columns are MultiPolygon), for one chunk: the copies live only while it is sent."""
    polygon = shapely.get_type_id(geoms) == 3
    if polygon.any():
        geoms = geoms.copy()
        geoms[polygon] = shapely.multipolygons(geoms[polygon],
                                               indices=np.arange(int(polygon.sum())))
    return shapely.to_wkb(shapely.set_srid(geoms, srid), hex=True, include_srid=True)


def _copy_float(value: float) -> str:
    """A float as COPY text; whole numbers without '.0' so they also fit integer columns."""
    if value != value:  # NaN
        return "\\N"
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _copy_column(values: pd.Series, srid: int = 4326) -> list[str]:
    """A column as COPY text (``\\N`` for NULL): numbers, plain text, dates and geometries
    in bulk, anything unusual through ``_copy_scalar`` value by value.

    Integral floats are written as integers (a float column holding whole numbers may feed
    an integer column).
    """
    kind = values.dtype.kind
    if kind in "iu" and isinstance(values.dtype, np.dtype):
        return values.to_numpy().astype(str).tolist()
    if kind == "f" and isinstance(values.dtype, np.dtype):
        return [_copy_float(v) for v in values.to_numpy().tolist()]
    arr = values.to_numpy(dtype=object)
    null = pd.isna(arr)
    present = arr[~null]
    types = {type(v) for v in present.tolist()}
    out = np.full(len(arr), "\\N", dtype=object)
    if types and all(issubclass(t, shapely.Geometry) for t in types):
        out[~null] = _ewkb_hex(present, srid)
    elif types <= {str}:
        joined = "".join(present.tolist())  # one scan in C instead of a check per cell
        if any(ch in joined for ch in "\\\t\n\r"):
            present = np.array([v.translate(_COPY_ESCAPES) for v in present.tolist()],
                               dtype=object)
        out[~null] = present
    elif types <= {date}:
        out[~null] = [v.isoformat() for v in present.tolist()]
    else:
        out[~null] = [_copy_scalar(v) for v in present.tolist()]
    return out.tolist()


class _BoundedQueuedWriter(QueuedLibpqWriter):
    """psycopg's queued writer, holding at most a few buffers (of <= 4 MB each).

    The stock queue takes 1,024 buffers: when the server parses slower than Python
    formats, a whole file's COPY text piled up in memory (hundreds of MB at 1M rows).
    A few buffers keep both sides busy all the same.
    """

    def __init__(self, cursor: Cursor) -> None:
        super().__init__(cursor)
        self._queue = Queue(maxsize=COPY_QUEUE_BUFFERS)


def copy_rows(conn: Connection, table: str, columns: str, rows: pd.DataFrame,
              progress: Callable[[int, int], None] | None = None, srid: int = 4326) -> None:
    """COPY ``rows`` into ``table`` (geometry as hex EWKB in column ``wkb``, parsed by
    PostGIS into ``geom``). Shared by every loader's staging step.

    The COPY text is built a chunk of rows at a time with column-wise string operations
    (a Python call per cell made staging a large share of a load's time); values of types
    it does not know fall back to psycopg's own row writer. A column may also hold shapely
    geometries (``srid`` applies to them): they are encoded here, chunk by chunk.
    """
    raw = conn.connection.driver_connection
    total = len(rows)
    # The queued writer sends from a thread: the server parses one chunk (hex EWKB into
    # geometries) while Python formats the next.
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN",
                                       writer=_BoundedQueuedWriter(cur)) as copy:
        for done, data in copy_chunks(rows, columns, srid):
            if isinstance(data, bytes):
                copy.write(data)
            else:
                _write_rows(copy, data, srid)
            if progress:
                progress(done, total)


def copy_chunks(rows: pd.DataFrame, columns: str, srid: int = 4326
                ) -> Iterator[tuple[int, bytes | pd.DataFrame]]:
    """``rows`` as COPY text, a chunk at a time: (rows done, the chunk's text, or the
    chunk itself where a value has no text form here and psycopg's row writer must
    write it). Formatting is apart from sending so that a thread can format the next
    batch while the connection sends this one (``pipelined``)."""
    total = len(rows)
    order = [c.strip() for c in columns.split(",")]
    frame = rows.rename(columns={"wkb": "geom"})[order]
    for begin in range(0, total, COPY_CHUNK_ROWS):
        chunk = frame.iloc[begin:begin + COPY_CHUNK_ROWS]
        done = min(begin + COPY_CHUNK_ROWS, total)
        try:
            text_cols = [_copy_column(chunk[c], srid) for c in order]
        except TypeError:
            yield done, chunk
        else:
            lines = ["\t".join(row) for row in zip(*text_cols, strict=True)]
            yield done, ("\n".join(lines) + "\n").encode()


def copy_formatted(conn: Connection, table: str, columns: str,
                   chunks: Iterable[bytes | pd.DataFrame], srid: int = 4326) -> None:
    """COPY chunks made by ``copy_chunks`` (in another thread, or earlier) into ``table``."""
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for data in chunks:
            if isinstance(data, bytes):
                copy.write(data)
            else:
                _write_rows(copy, data, srid)


_DONE = object()


def pipelined[T](items: Iterator[T], depth: int = 2, poll_s: float = 0.5) -> Iterator[T]:
    """The items of ``items``, produced in a thread up to ``depth`` ahead of the caller.

    A load is Python work (reading, validating, formatting COPY text) and database work
    (parsing and storing what is sent); in one thread they take turns. Produced in a
    thread, the next batch is validated while the connection sends this one and the
    server stores it, so the two cores work at once (numpy, shapely, pyproj and psycopg's
    waits release the GIL). ``depth`` bounds the batches held. An exception in the
    producer is raised here, at the item it stopped at; a caller that stops early (an
    error while sending) stops the producer at its next item.
    """
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=poll_s)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put((_DONE, exc))
            return
        finally:  # a generator stopped early lets go of its file now, not at collection
            close = getattr(items, "close", None)
            if close is not None:
                close()
        put((_DONE, None))

    thread = threading.Thread(target=produce, name="lis-load-producer", daemon=True)
    thread.start()
    try:
        while True:
            item, error = queue.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=30)


def _write_rows(copy: Copy, chunk: pd.DataFrame, srid: int) -> None:
    """psycopg's row writer: the general path for values ``_copy_scalar`` cannot write."""
    frame = chunk.astype(object)
    frame = frame.where(pd.notna(frame), None)
    for name in frame.columns:
        column = frame[name]
        present = column.notna()
        if present.any() and isinstance(column[present].iloc[0], shapely.Geometry):
            frame.loc[present, name] = _ewkb_hex(column[present].to_numpy(dtype=object), srid)
    for row in frame.itertuples(index=False, name=None):
        copy.write_row(row)



def advisory_lock(conn: Connection, namespace: str, keys: list[str]) -> None:
    """Serialise concurrent loads of the same keys (sorted: no deadlock) until COMMIT."""
    for key in sorted(keys):
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:ns || '.' || :k))"),
                     {"ns": f"lis.{namespace}", "k": key})
