"""The valuation domain's commands: ``lis load prices``, ``lis load parcel-sites`` and
``lis valuate``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click
from sqlalchemy.engine import Engine

from etl.commands import echo_result
from landplatform.cli import engine, ensure_database
from landplatform.settings import Settings, get_settings


@click.command("prices")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--segments", type=click.Path(path_type=Path),
              help="Road segment geometries (GeoPackage/Shapefile) of the table's segments.")
@click.option("--zones", type=click.Path(path_type=Path),
              help="Value zones (vùng giá trị) with their standard parcel (GeoPackage/Shapefile).")
@click.option("--table-code", help="The table's code (natural key), overrides the sidecar.")
@click.option("--crs", help="CRS of geometry files that have none, e.g. EPSG:5899.")
@click.option("--layer", help="Layer of the segments file (GeoPackage with several layers).")
@click.option("--encoding", help="Text encoding of geometry DBFs without .cpg, e.g. cp1258.")
@click.option("--quarantine", is_flag=True,
              help="Load the valid rows, record the rejected ones (default: all or none).")
@click.option("--report", type=click.Path(path_type=Path),
              help="Write every rejected row/feature, repair and note to this CSV.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def load_prices_cmd(file: Path, segments: Path | None, zones: Path | None,
                    table_code: str | None, crs: str | None, layer: str | None,
                    encoding: str | None, quarantine: bool, report: Path | None,
                    quiet: bool) -> None:
    """Validate and load a land price table from FILE (.xlsx or .csv) in one transaction.

    The table's identity and each sheet's role come from FILE's sidecar
    (<stem>.prices.yaml). Exits 1 when the table is rejected or fails; nothing of it is
    loaded then. Rejects name the sheet, row and column (field "<sheet>!<column>").
    """
    from etl.progress import Progress
    from valuation.loader import load_prices

    ensure_database(quiet=True)
    result = load_prices(engine(), file, segments=segments, zones=zones,
                         table_code=table_code, quarantine=quarantine, layer=layer, crs=crs,
                         encoding=encoding, progress=Progress("prices", enabled=not quiet))
    if not echo_result(result, report):
        sys.exit(1)


@click.command("parcel-sites")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load_parcel_sites_cmd(file: Path) -> None:
    """Load the recorded facts of parcels' sites from a CSV: the alley width that sets a
    parcel's position, the height difference to the road (MaXa, SoHieuToBanDo,
    SoThuTuThua, BeRongNgo, ChenhLechCao). All or nothing; exits 1 naming every problem."""
    from valuation.sites import SitesError, load_parcel_sites

    ensure_database(quiet=True)
    try:
        counts = load_parcel_sites(engine(), file)
    except SitesError as exc:
        for problem in exc.problems:
            click.echo(f"{file.name}: {problem}", err=True)
        click.echo(f"{file.name}: refused, nothing loaded", err=True)
        sys.exit(1)
    click.echo(f"{file.name}: parcel sites +{counts['inserted']} ~{counts['updated']} "
               f"={counts['unchanged']} (run valuate for the new positions)")


@click.command()
@click.option("--district", "districts", multiple=True,
              help="District code, e.g. 001 (repeat for several).")
@click.option("--all", "all_districts", is_flag=True, help="Every district that has parcels.")
@click.option("--date", "on_date", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Table date, YYYY-MM-DD (default: today, or the start of the latest "
                   "table when none covers today).")
@click.option("--if-changed", is_flag=True,
              help="Skip districts whose latest run has the same inputs.")
@click.option("--surface/--no-surface", default=True, show_default=True,
              help="Write the district's price surface (COG) after the run.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def valuate(districts: tuple[str, ...], all_districts: bool, on_date, if_changed: bool,  # noqa: ANN001
            surface: bool, quiet: bool) -> None:
    """Value every parcel of the districts by the land price table valid on the date.

    Each district is one run (new run id, stored with its explanation per land-use part);
    the summary names parcels valued, the total value and the parts without price and why.
    Exits 1 when a district could not be valued.
    """
    if not districts and not all_districts:
        raise click.UsageError("name a --district (or --all)")
    ensure_database(quiet=True)
    from valuation.service import run_valuations

    def progress(message: str) -> None:
        if not quiet:
            click.echo(f"[valuate] {message}", err=True)

    outcome = run_valuations(engine(), None if all_districts else list(districts),
                             var_dir=get_settings().var_dir,
                             on_date=on_date.date() if on_date else None,
                             if_changed=if_changed, surfaces=surface, echo=click.echo,
                             progress=progress)
    if outcome.failures:
        sys.exit(1)


def value_after_samples(engine: Engine, settings: Settings, echo: Callable[..., None]) -> bool:
    """What ``lis up`` does after the samples: value every district that has parcels and a
    price table, unless its inputs are unchanged since its last run (``Domain.after_samples``)."""
    from valuation.service import run_valuations

    outcome = run_valuations(engine, None, var_dir=settings.var_dir, if_changed=True,
                             surfaces=True, echo=echo,
                             progress=lambda m: echo(f"[valuate] {m}", err=True),
                             skip_without_table=True)
    return not outcome.failures
