"""Value districts and refresh their price surfaces: what ``lis valuate`` and ``lis up`` run.

Kept apart from the engine (which only prices and stores) so the command line stays thin and
the surface is written only after its run has committed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy.engine import Engine

from valuation.engine import (
    RunSummary,
    ValuationError,
    default_date,
    district_facts,
    table_for,
    valuate,
    valued_districts,
)
from valuation.surface import surface_path, write_surface

Echo = Callable[[str], None]


@dataclass
class Outcome:
    summaries: list[RunSummary] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    surfaces: dict[str, Path | None] = field(default_factory=dict)
    not_priced: list[str] = field(default_factory=list)


def run_valuations(engine: Engine, districts: Sequence[str] | None, *, var_dir: Path,
                   on_date: date | None = None, today: date | None = None,
                   if_changed: bool = False, surfaces: bool = True,
                   echo: Echo = print, progress: Echo = print,
                   skip_without_table: bool = False) -> Outcome:
    """Value ``districts`` (None: every district with parcels) by the table valid on
    ``on_date`` (None: today, or the latest table's start when none covers today).

    With ``if_changed`` a district whose latest run has the same inputs is not valued again
    (its surface is written only if missing). With ``skip_without_table`` a district with no
    table for the date is passed over quietly (``lis up``) instead of counted as a failure.
    """
    today = today or date.today()
    out = Outcome()
    for district in districts or valued_districts(engine):
        try:
            with engine.connect() as conn:
                provinces, _ = district_facts(conn, district)
                when = on_date or default_date(conn, provinces, today)
                if skip_without_table and table_for(conn, provinces, when) is None:
                    out.not_priced.append(district)
                    echo(f"Valuation: district {district}: no price table valid on {when}, "
                         "not valued")
                    continue
            summary = valuate(engine, district, when, progress=progress, if_changed=if_changed)
        except ValuationError as exc:
            out.failures[district] = str(exc)
            echo(f"Valuation: FAILED: {exc}")
            continue
        out.summaries.append(summary)
        for line in summary.lines():
            echo(f"Valuation: {line}")
        if surfaces and (not summary.skipped or not surface_path(var_dir, district).exists()):
            progress(f"district {district}: price surface")
            path = write_surface(engine, district, var_dir)
            out.surfaces[district] = path
            echo(f"Valuation: district {district}: price surface "
                 + (f"{path}" if path else "not written (no priced parcel)"))
    return out
