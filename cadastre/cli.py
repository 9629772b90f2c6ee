"""The cadastre's commands: ``lis load parcels``, ``lis load split-rules``, ``lis load
sheet-crosswalk``, ``lis parcel`` and ``lis dossier`` (file, register, withdraw, show: as
an operator at the shell)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from cadastre.rules import DELIVERIES
from etl.commands import geometry_load_options, load_files
from landplatform.cli import engine, ensure_database, extensions


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
    A holders file beside it (<file stem>.chu_su_dung.csv) gives parcels several holders.
    Exits 1 when a file is rejected or fails; nothing of that file is loaded.
    """
    from cadastre.loader import load_parcels
    from cadastre.rules import Options
    from etl.progress import Progress

    ensure_database(quiet=True)
    load_files(files, lambda path: load_parcels(
        engine(), path, options=Options(crs=crs, delivery=delivery, scale=scale),
        quarantine=quarantine, layer=layer, encoding=encoding,
        progress=Progress("load", enabled=not quiet)), report)


@click.command()
@click.argument("commune_code")
@click.argument("sheet_no", type=int)
@click.argument("parcel_no", type=int)
def parcel(commune_code: str, sheet_no: int, parcel_no: int) -> None:
    """Print a parcel (GeoJSON) by commune code, map sheet number and parcel number: the
    pre-2025 commune's, or the 2025 commune's (its renumbered sheet)."""
    from cadastre.lookup import find_parcels

    ensure_database(quiet=True)
    found = find_parcels(engine(), commune_code.zfill(5), sheet_no, parcel_no)
    if not found:
        raise click.ClickException(f"no current parcel {sheet_no}/{parcel_no} in commune "
                                   f"{commune_code}")
    if len(found) > 1:
        raise click.ClickException(
            f"{sheet_no}/{parcel_no} in commune {commune_code} names {len(found)} parcels: "
            + "; ".join(f"{f['properties']['parcel_ref']} ({f['matched_by']})"
                        for f in found))
    click.echo(json.dumps(found[0], ensure_ascii=False))


@click.command("split-rules")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load_split_rules_cmd(file: Path) -> None:
    """Load a province's minimum split areas (CSV: province_code, land_use, commune_kind,
    min_area_m2, min_width_m, source); replaces that province's rows, all or nothing."""
    from cadastre.split_rules import SplitRulesError, load_split_rules

    ensure_database(quiet=True)
    try:
        count = load_split_rules(engine(), file)
    except SplitRulesError as exc:
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        raise click.ClickException(f"{file.name} refused: nothing loaded") from None
    click.echo(f"{file.name}: {count} minimum split areas loaded")


@click.command("sheet-crosswalk")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--quarantine", is_flag=True,
              help="Load the valid rows, record the refused ones (default: all or none).")
@click.option("--report", type=click.Path(path_type=Path),
              help="Write every refused row to this CSV.")
def load_sheet_crosswalk_cmd(files: tuple[Path, ...], quarantine: bool,
                             report: Path | None) -> None:
    """Load map sheet crosswalk FILES (CSV: old_commune_code, old_sheet_no,
    new_commune_code, new_sheet_no): the old communes' sheets renumbered into their 2025
    commune, so a parcel is found by either number. One transaction each; a re-load of
    the same rows changes nothing. Exits 1 when a file is refused; nothing of it loaded."""
    from cadastre.sheet_crosswalk import load_sheet_crosswalk

    ensure_database(quiet=True)
    load_files(files, lambda path: load_sheet_crosswalk(engine(), path,
                                                        quarantine=quarantine), report)


def _operator():  # noqa: ANN202 - cadastre.dossiers.Actor
    import getpass

    from cadastre.dossiers import Actor

    return Actor(getpass.getuser(), "operator")


def _dossier_call(fn, *args) -> None:  # noqa: ANN001
    from cadastre.dossiers import DossierError, DossierService

    ensure_database(quiet=True)
    service = DossierService(engine(), extensions())
    try:
        result = fn(service, *args)
    except DossierError as exc:
        click.echo(json.dumps(exc.body(), ensure_ascii=False, indent=1, default=str),
                   err=True)
        sys.exit(1)
    doc = result[1] if isinstance(result, tuple) else result
    click.echo(json.dumps(doc, ensure_ascii=False, indent=1, default=str))


@click.group()
def dossier() -> None:
    """Registered land changes: file, register, withdraw and show dossiers."""


@dossier.command("file")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--register", is_flag=True, help="Register it in the same transaction.")
def dossier_file(file: Path, register: bool) -> None:
    """File the dossier in FILE (JSON, as POST /cadastre/dossiers takes it)."""
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{file.name} is not JSON: {exc}") from None
    if register and isinstance(doc, dict):
        doc["register"] = True
    _dossier_call(lambda s: s.file(_operator(), doc, ("cli", None)))


@dossier.command("register")
@click.argument("dossier_id", type=int)
def dossier_register(dossier_id: int) -> None:
    """Register a filed dossier."""
    _dossier_call(lambda s: s.register(_operator(), dossier_id, ("cli", None)))


@dossier.command("withdraw")
@click.argument("dossier_id", type=int)
def dossier_withdraw(dossier_id: int) -> None:
    """Withdraw a filed dossier (its pending parcels go)."""
    _dossier_call(lambda s: s.withdraw(_operator(), dossier_id))


@dossier.command("show")
@click.argument("dossier_id", type=int)
def dossier_show(dossier_id: int) -> None:
    """Print a dossier with its parcels."""
    _dossier_call(lambda s: s.show(_operator(), dossier_id))
