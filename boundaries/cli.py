"""The boundaries domain's command: ``lis load boundaries``."""

from __future__ import annotations

from pathlib import Path

import click

from boundaries.rules import PERIODS, WIDTH
from etl.commands import geometry_load_options, load_files
from landplatform.cli import engine, ensure_database


@click.command("boundaries")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@geometry_load_options("units")
@click.option("--period", type=click.Choice(sorted(PERIODS)),
              help="pre2025: the units as of 30 June 2025 (communes with their districts); "
                   "2025: the units since the 1 July 2025 reform. Default: pre2025 for a "
                   "file that has districts; otherwise it must be stated.")
@click.option("--level", type=click.Choice(list(WIDTH)),
              help="The level of the file's units, when its codes cannot say (a generic "
                   "MaDVHC stored as a number). Default: from its code fields.")
def load_boundaries_cmd(files: tuple[Path, ...], crs: str | None, layer: str | None,
                        encoding: str | None, quarantine: bool, report: Path | None,
                        quiet: bool, period: str | None, level: str | None) -> None:
    """Validate, reproject and load administrative boundary FILES (one transaction each).

    Each file is one level of units (communes, districts or provinces) of one period; a
    unit's new boundary supersedes its previous one (kept as a version), and a district
    whose boundary is not delivered gets the union of its communes' once all have one.
    Exits 1 when a file is rejected or fails; nothing of that file is loaded.
    """
    from boundaries.loader import load_boundaries
    from boundaries.rules import Options
    from etl.progress import Progress

    ensure_database(quiet=True)
    load_files(files, lambda path: load_boundaries(
        engine(), path, options=Options(crs=crs, period=period, level=level),
        quarantine=quarantine, layer=layer, encoding=encoding,
        progress=Progress("boundaries", enabled=not quiet)), report)
