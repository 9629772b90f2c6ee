"""The planning domain's commands: ``lis load plan`` and ``lis planning overlay``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from etl.commands import echo_result, geometry_load_options
from landplatform.cli import engine, ensure_database


@click.command("plan")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--plan-code", help="The plan's code (natural key), e.g. QHPK-001-2021-2030.")
@click.option("--plan-type", help="land_use_period, land_use_annual, zoning_1_2000 or "
                                  "detailed_1_500.")
@click.option("--district", help="Pre-2025 district code the plan covers, e.g. 001.")
@click.option("--admin-level", help="Level of the plan's unit: province, district (default) "
                                    "or commune.")
@click.option("--admin-code", help="Code of the plan's unit (default: the district).")
@click.option("--period", help="Plan period, e.g. 2021-2030 (or the year of an annual plan).")
@click.option("--scale", help="Scale denominator, e.g. 2000 (implied by zoning/detailed).")
@click.option("--decision-no", help="Approving decision, e.g. 1234/QĐ-UBND.")
@click.option("--decision-date", help="Decision date, YYYY-MM-DD or DD/MM/YYYY.")
@click.option("--approved-by", help="Approving authority.")
@click.option("--title", help="The plan's title.")
@geometry_load_options("zones")
@click.option("--area-tolerance", type=float, default=0.01, show_default=True,
              help="Allowed relative difference between a zone's stated and drawn area.")
def load_plan_cmd(file: Path, crs: str | None, layer: str | None, encoding: str | None,
                  quarantine: bool, area_tolerance: float, report: Path | None, quiet: bool,
                  **metadata: str | None) -> None:
    """Validate and load a plan's zones from FILE in one transaction.

    Plan metadata comes from FILE's sidecar (<file>.plan.yaml or <stem>.plan.yaml) and the
    options above (options win). Exits 1 when the file is rejected or fails; nothing of it
    is loaded then.
    """
    from etl.progress import Progress
    from planning.loader import load_plan
    from planning.rules import Options

    ensure_database(quiet=True)
    result = load_plan(engine(), file, metadata=metadata, quarantine=quarantine,
                       options=Options(crs=crs, area_tolerance=area_tolerance),
                       layer=layer, encoding=encoding,
                       progress=Progress("plan", enabled=not quiet))
    if not echo_result(result, report):
        sys.exit(1)


@click.group()
def planning() -> None:
    """Planning: plans on parcels."""


@planning.command("overlay")
@click.option("--plan", "plan_code", required=True, help="The plan's code.")
@click.option("--district", help="Only this district's zones and parcels.")
@click.option("--min-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Leave out (parcel, zone) pairs covering less of the parcel.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="FILE.gpkg (GeoPackage, parcel geometry) or FILE.csv (no geometry).")
def planning_overlay(plan_code: str, district: str | None, min_share: float,
                     out: Path) -> None:
    """Write every parcel the plan affects (overlap m², share, current vs planned use)."""
    from planning.export import write_overlay
    from planning.overlay import PlanNotFound

    ensure_database(quiet=True)
    try:
        n = write_overlay(engine(), plan_code, out, district, min_share)
    except (PlanNotFound, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{out}: {n} (parcel, zone) rows of plan {plan_code}")
