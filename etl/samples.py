"""The samples walker: load the deliveries a samples folder lists, each once.

A delivery already loaded unchanged (same identity, same kind, status loaded) is skipped,
so a second ``lis up`` loads nothing twice. Each domain says what its deliveries are and
how to load one; the walking, skipping and reporting are here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from sqlalchemy.engine import Engine

from etl.ledger import loaded_run
from etl.report import LoadResult


def read_manifest(folder: Path) -> object | None:
    """The folder's ``manifest.json`` (None when there is none)."""
    path = folder / "manifest.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def load_listed[T](engine: Engine, deliveries: Iterable[T], *, kind: str, label: str,
                      identity: Callable[[T], str], name: Callable[[T], str],
                   load: Callable[[T], LoadResult], echo: Callable[..., None]) -> bool:
    """Load each delivery not yet loaded; whether all that were tried loaded."""
    ok = True
    for delivery in deliveries:
        run = loaded_run(engine, identity(delivery), kind)
        if run is not None:
            echo(f"Samples: {label}{name(delivery)} already loaded (run {run}), skipped")
            continue
        result = load(delivery)
        for line in result.detail_lines():
            echo(line, err=True)
        echo(f"Samples: {result.summary()}")
        ok &= result.status == "loaded"
    return ok
