"""What every loader's command line shares: the options of a geometry file load, printing
a load's result, and ``lis runs`` (the load-run ledger)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import click
from sqlalchemy import text

from etl.report import LoadResult
from landplatform.cli import engine, ensure_database


def echo_result(result: LoadResult, report: Path | None) -> bool:
    """Print a load's details and summary (errors to stderr), write its CSV report when
    asked; whether it loaded."""
    loaded = result.status == "loaded"
    for line in result.detail_lines():
        click.echo(line, err=True)
    click.echo(result.summary(), err=not loaded)
    if report:
        result.write_csv(report)
    return loaded


def load_files(files: Sequence[Path], load: Callable[[Path], LoadResult],
               report: Path | None) -> None:
    """Load each file on its own (one transaction each), print each result, write each
    report (``<report>-<file>`` when several files share ``--report``); exit 1 when any
    file was rejected or failed."""
    failed = 0
    for path in files:
        target = report if report is None or len(files) == 1 \
            else report.with_stem(f"{report.stem}-{path.stem}")
        failed += not echo_result(load(path), target)
    if failed:
        sys.exit(1)


def geometry_load_options(noun: str):  # noqa: ANN201 - a click decorator
    """The options every load of a geometry file takes (parcels, plan zones)."""
    options = [
        click.option("--crs", help="Source CRS when the file has none, e.g. EPSG:5897."),
        click.option("--layer", help="Layer to read (GeoPackage with several layers)."),
        click.option("--encoding", help="Text encoding of a DBF without .cpg, e.g. cp1258."),
        click.option("--quarantine", is_flag=True,
                     help=f"Load the valid {noun}, record the rejected ones "
                          "(default: all or none)."),
        click.option("--report", type=click.Path(path_type=Path),
                     help=f"Write every rejected or repaired {noun[:-1]} to this CSV."),
        click.option("--quiet", is_flag=True, help="No progress lines."),
    ]

    def decorate(fn):  # noqa: ANN001, ANN202
        for option in reversed(options):
            fn = option(fn)
        return fn
    return decorate


@click.command()
@click.option("--limit", default=20, show_default=True)
def runs(limit: int) -> None:
    """List recent load runs."""
    ensure_database(quiet=True)
    with engine().connect() as conn:
        rows = conn.execute(text("""
            SELECT run_id, status, mode, features_read, inserted, updated, unchanged,
                   rejected, finished_at, file_name
              FROM etl.load_run ORDER BY run_id DESC LIMIT :n"""), {"n": limit}).all()
    for r in rows:
        click.echo(f"{r.run_id:>5} {r.status:<8} {r.mode:<10} read {r.features_read:>7} "
                   f"+{r.inserted} ~{r.updated} ={r.unchanged} x{r.rejected} "
                   f"{r.finished_at:%Y-%m-%d %H:%M} {Path(r.file_name).name}")
