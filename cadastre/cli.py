"""The cadastre's commands: ``lis load parcels`` and ``lis parcel``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from cadastre.rules import DELIVERIES
from etl.commands import echo_result, geometry_load_options
from landplatform.cli import engine, ensure_database


@click.command("parcels")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@geometry_load_options("features")
@click.option("--delivery", type=click.Choice(DELIVERIES),
              help="changes: changed parcels, whose old numbers (SoThuTuThuaCu) retire "
                   "their parents (default); resurvey: the whole cadastre of its communes "
                   "(đo đạc lại). Default: the sidecar's, else changes.")
@click.option("--scale", type=int, help="Map scale denominator of sheets the file and its "
                                        "sidecar state none for, e.g. 500.")
def load_parcels_cmd(files: tuple[Path, ...], crs: str | None, layer: str | None,
                     encoding: str | None, quarantine: bool, report: Path | None,
                     quiet: bool, delivery: str | None, scale: int | None) -> None:
    """Validate, reproject and load cadastral parcel FILES (one transaction each).

    A file's sidecar (<file>.parcels.yaml) may say what it is (delivery: changes |
    resurvey) and its map scale (scale: 500; sheet_scales: {12: 1000}); the options win.
    Exits 1 when a file is rejected or fails; nothing of that file is loaded.
    """
    from cadastre.loader import load_parcels
    from cadastre.rules import Options
    from etl.progress import Progress

    ensure_database(quiet=True)
    failed = 0
    for path in files:
        result = load_parcels(engine(), path,
                              options=Options(crs=crs, delivery=delivery, scale=scale),
                              quarantine=quarantine, layer=layer, encoding=encoding,
                              progress=Progress("load", enabled=not quiet))
        target = report if report is None or len(files) == 1 \
            else report.with_stem(f"{report.stem}-{path.stem}")
        failed += not echo_result(result, target)
    if failed:
        sys.exit(1)


@click.command()
@click.argument("commune_code")
@click.argument("sheet_no", type=int)
@click.argument("parcel_no", type=int)
def parcel(commune_code: str, sheet_no: int, parcel_no: int) -> None:
    """Print a parcel (GeoJSON) by commune code, map sheet number and parcel number."""
    from cadastre.lookup import find_parcel

    ensure_database(quiet=True)
    feature = find_parcel(commune_code.zfill(5), sheet_no, parcel_no)
    if feature is None:
        raise click.ClickException(f"no current parcel {sheet_no}/{parcel_no} in commune "
                                   f"{commune_code}")
    click.echo(json.dumps(feature, ensure_ascii=False))
