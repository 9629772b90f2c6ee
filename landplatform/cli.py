"""``lis``: the platform's command line (the composition root: the only place that
imports the ETL next to the platform).

    lis up                       embedded PostGIS (unless DATABASE_URL), migrate, samples, serve
    lis load parcels FILE ...    validate and load delivered parcel files
    lis load plan FILE ...       validate and load a plan's zones (metadata: options/.plan.yaml)
    lis load prices FILE ...     validate and load a land price table (Excel/CSV + .prices.yaml)
    lis load samples             load data/samples (files already loaded are skipped)
    lis valuate --district D     value a district's parcels by its price table, price surface
    lis planning overlay ...     a plan's zones on the parcels, to GeoPackage or CSV
    lis samples generate         (re)write data/samples with the deterministic generator
    lis parcel COMMUNE SHEET NO  look a parcel up
    lis runs                     recent load runs
    lis token issue --sub S --role officer|admin [--district D] [--ttl 8h]
    lis migrate | serve | db start|stop|status|url
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from landplatform.settings import get_settings


def _engine():  # noqa: ANN202
    from landplatform.db import get_engine

    return get_engine()


def _ensure_database(quiet: bool = False) -> None:
    """Start the embedded cluster when no DATABASE_URL is set."""
    from landplatform.db import embedded_cluster
    from landplatform.pgcluster import ClusterError

    settings = get_settings()
    if settings.database_url:
        return
    cluster = embedded_cluster(settings)
    try:
        was_running = cluster.is_running()
        cluster.ensure_running()
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc
    if not quiet:
        state = "running" if was_running else "started"
        click.echo(f"PostGIS: embedded cluster {state} at {cluster.root} "
                   f"(127.0.0.1:{cluster.port})")


@click.group()
@click.version_option(package_name="landplatform")
def main() -> None:
    """Land-information platform: load land data into PostGIS, publish it as OGC APIs."""


@main.command()
def migrate() -> None:
    """Apply the schema migrations."""
    _ensure_database()
    _migrate()


def _migrate() -> None:
    from landplatform.migrate import current_heads, expected_heads, upgrade

    engine = _engine()
    before = current_heads(engine)
    upgrade(engine)
    heads = expected_heads()
    click.echo(f"Schema: {'up to date' if before == heads else 'migrated'} at "
               f"{', '.join(sorted(heads))}")


def _echo_result(result, report: Path | None) -> bool:  # noqa: ANN001 - any load's result
    """Print a load's details and summary (errors to stderr), write its CSV report when
    asked; whether it loaded."""
    loaded = result.status == "loaded"
    for line in result.detail_lines():
        click.echo(line, err=True)
    click.echo(result.summary(), err=not loaded)
    if report:
        result.write_csv(report)
    return loaded


def geometry_load_options(noun: str):  # noqa: ANN201 - a click decorator
    """The options every load of a geometry file takes (parcels, plan zones)."""
    options = [
        click.option("--crs", help="Source CRS when the file has none, e.g. EPSG:5897."),
        click.option("--layer", help="Layer to read (GeoPackage with several layers)."),
        click.option("--encoding", help="Text encoding of a DBF without .cpg, e.g. cp1258."),
        click.option("--quarantine", is_flag=True,
                     help=f"Load the valid {noun}, record the rejected ones "
                          "(default: all or none)."),
        click.option("--area-tolerance", type=float, default=0.01, show_default=True,
                     help="Allowed relative difference between DienTich and the geometry's "
                          "area."),
        click.option("--report", type=click.Path(path_type=Path),
                     help=f"Write every rejected or repaired {noun[:-1]} to this CSV."),
        click.option("--quiet", is_flag=True, help="No progress lines."),
    ]

    def decorate(fn):  # noqa: ANN001, ANN202
        for option in reversed(options):
            fn = option(fn)
        return fn
    return decorate


@main.group()
def load() -> None:
    """Load delivered files."""


@load.command("parcels")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@geometry_load_options("features")
def load_parcels_cmd(files: tuple[Path, ...], crs: str | None, layer: str | None,
                     encoding: str | None, quarantine: bool, area_tolerance: float,
                     report: Path | None, quiet: bool) -> None:
    """Validate, reproject and load cadastral parcel FILES (one transaction each).

    Exits 1 when a file is rejected or fails; nothing of that file is loaded.
    """
    from etl.parcel_rules import Options
    from etl.parcels import load_parcels
    from etl.progress import Progress

    _ensure_database(quiet=True)
    failed = 0
    for path in files:
        result = load_parcels(_engine(), path,
                              options=Options(crs=crs, area_tolerance=area_tolerance),
                              quarantine=quarantine, layer=layer, encoding=encoding,
                              progress=Progress("load", enabled=not quiet))
        target = report if report is None or len(files) == 1 \
            else report.with_stem(f"{report.stem}-{path.stem}")
        failed += not _echo_result(result, target)
    if failed:
        sys.exit(1)


@load.command("plan")
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
def load_plan_cmd(file: Path, crs: str | None, layer: str | None, encoding: str | None,
                  quarantine: bool, area_tolerance: float, report: Path | None, quiet: bool,
                  **metadata: str | None) -> None:
    """Validate and load a plan's zones from FILE in one transaction.

    Plan metadata comes from FILE's sidecar (<file>.plan.yaml or <stem>.plan.yaml) and the
    options above (options win). Exits 1 when the file is rejected or fails; nothing of it
    is loaded then.
    """
    from etl.plan_rules import Options
    from etl.plans import load_plan
    from etl.progress import Progress

    _ensure_database(quiet=True)
    result = load_plan(_engine(), file, metadata=metadata, quarantine=quarantine,
                       options=Options(crs=crs, area_tolerance=area_tolerance),
                       layer=layer, encoding=encoding,
                       progress=Progress("plan", enabled=not quiet))
    if not _echo_result(result, report):
        sys.exit(1)


@load.command("prices")
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
    from etl.prices import load_prices
    from etl.progress import Progress

    _ensure_database(quiet=True)
    result = load_prices(_engine(), file, segments=segments, zones=zones,
                         table_code=table_code, quarantine=quarantine, layer=layer, crs=crs,
                         encoding=encoding, progress=Progress("prices", enabled=not quiet))
    if not _echo_result(result, report):
        sys.exit(1)


@load.command("samples")
@click.option("--dir", "samples_dir", type=click.Path(path_type=Path),
              help="Folder with manifest.json (default: data/samples).")
def load_samples_cmd(samples_dir: Path | None) -> None:
    """Load the sample files; a file already loaded unchanged is skipped."""
    _ensure_database(quiet=True)
    if not _load_samples(samples_dir or get_settings().samples_dir):
        sys.exit(1)


def _load_samples(samples_dir: Path) -> bool:
    from sqlalchemy import text

    from etl.parcels import load_parcels
    from etl.progress import Progress
    from etl.sources import file_sha256

    manifest_path = samples_dir / "manifest.json"
    if not manifest_path.exists():
        raise click.ClickException(f"{manifest_path} not found: run `lis samples generate`")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    entries = manifest["files"] if isinstance(manifest, dict) else manifest
    engine = _engine()
    ok = True
    for entry in entries:
        path = samples_dir / entry["file"]
        with engine.connect() as conn:
            run = conn.execute(text(
                "SELECT run_id FROM etl.load_run WHERE file_sha256 = :sha AND status = 'loaded' "
                "ORDER BY run_id DESC LIMIT 1"), {"sha": file_sha256(path)}).scalar()
        if run is not None:
            click.echo(f"Samples: {path.name} already loaded (run {run}), skipped")
            continue
        result = load_parcels(engine, path, progress=Progress("samples"))
        for line in result.detail_lines():
            click.echo(line, err=True)
        click.echo(f"Samples: {result.summary()}")
        ok &= result.status == "loaded"
    from etl.plans import load_sample_plans
    from etl.prices import load_sample_prices

    ok = load_sample_plans(engine, samples_dir / "plans", click.echo) and ok
    return load_sample_prices(engine, samples_dir / "prices", click.echo) and ok


@main.group()
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

    _ensure_database(quiet=True)
    try:
        n = write_overlay(_engine(), plan_code, out, district, min_share)
    except (PlanNotFound, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{out}: {n} (parcel, zone) rows of plan {plan_code}")


@main.group()
def samples() -> None:
    """Sample data."""


@samples.command("generate")
@click.option("--out", type=click.Path(path_type=Path), help="Output folder.")
@click.option("--seed", type=int, default=2025, show_default=True)
@click.option("--scale", type=int, help="Write one GeoPackage of N parcels (benchmarks).")
def samples_generate(out: Path | None, seed: int, scale: int | None) -> None:
    """Write the deterministic sample files (or a large file with --scale)."""
    from etl import samplegen

    argv = ["--out", str(out or get_settings().samples_dir), "--seed", str(seed)]
    if scale:
        argv += ["--scale", str(scale)]
    code = samplegen.main(argv)
    if code == 0 and not scale:
        from etl import samplegen_plans

        folder = Path(argv[1])
        code = samplegen_plans.main(["--out", str(folder / "plans"), "--seed", str(seed),
                                     "--samples", str(folder)])
    if code == 0 and not scale:
        from etl import samplegen_prices

        folder = Path(argv[1])
        code = samplegen_prices.main(["--out", str(folder / "prices"), "--samples",
                                      str(folder)])
    sys.exit(code)


@main.command()
@click.argument("commune_code")
@click.argument("sheet_no", type=int)
@click.argument("parcel_no", type=int)
def parcel(commune_code: str, sheet_no: int, parcel_no: int) -> None:
    """Print a parcel (GeoJSON) by commune code, map sheet number and parcel number."""
    from cadastre.lookup import find_parcel

    _ensure_database(quiet=True)
    feature = find_parcel(commune_code.zfill(5), sheet_no, parcel_no)
    if feature is None:
        raise click.ClickException(f"no current parcel {sheet_no}/{parcel_no} in commune "
                                   f"{commune_code}")
    click.echo(json.dumps(feature, ensure_ascii=False))


@main.command()
@click.option("--limit", default=20, show_default=True)
def runs(limit: int) -> None:
    """List recent load runs."""
    from sqlalchemy import text

    _ensure_database(quiet=True)
    with _engine().connect() as conn:
        rows = conn.execute(text("""
            SELECT run_id, status, mode, features_read, inserted, updated, unchanged,
                   rejected, finished_at, file_name
              FROM etl.load_run ORDER BY run_id DESC LIMIT :n"""), {"n": limit}).all()
    for r in rows:
        click.echo(f"{r.run_id:>5} {r.status:<8} {r.mode:<10} read {r.features_read:>7} "
                   f"+{r.inserted} ~{r.updated} ={r.unchanged} x{r.rejected} "
                   f"{r.finished_at:%Y-%m-%d %H:%M} {Path(r.file_name).name}")


@main.group()
def token() -> None:
    """Bearer tokens of the embedded local issuer (docs/SECURITY.md)."""


@token.command("issue")
@click.option("--sub", required=True, help="Who the token is for (recorded in the audit log).")
@click.option("--role", required=True, type=click.Choice(["officer", "admin"]))
@click.option("--district", help="Pre-2025 district code an officer works in, e.g. 001.")
@click.option("--ttl", default="8h", show_default=True, help="Lifetime: 30m, 8h, 2d, ...")
def token_issue(sub: str, role: str, district: str | None, ttl: str) -> None:
    """Print a token signed with the local secret (refused when an external OIDC provider
    is configured: its tokens come from that provider)."""
    from landplatform.auth.tokens import LOCAL_AUDIENCE, issue_local, local_secret, parse_ttl

    settings = get_settings()
    if settings.auth_jwks_url:
        raise click.ClickException("LIS_AUTH_JWKS_URL is set: tokens come from the external "
                                   "OIDC provider, not from `lis token issue`")
    try:
        click.echo(issue_local(local_secret(settings), sub=sub, role=role, district=district,
                               ttl_s=parse_ttl(ttl),
                               audience=settings.auth_audience or LOCAL_AUDIENCE))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
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
    _ensure_database(quiet=True)
    outcome = _valuate(None if all_districts else list(districts),
                       on_date.date() if on_date else None, if_changed=if_changed,
                       surfaces=surface, quiet=quiet)
    if outcome.failures:
        sys.exit(1)


def _valuate(districts: list[str] | None, on_date=None, *, if_changed: bool = False,  # noqa: ANN001
             surfaces: bool = True, quiet: bool = False, skip_without_table: bool = False):  # noqa: ANN202
    from valuation.service import run_valuations

    def progress(message: str) -> None:
        if not quiet:
            click.echo(f"[valuate] {message}", err=True)

    return run_valuations(_engine(), districts, var_dir=get_settings().var_dir,
                          on_date=on_date, if_changed=if_changed, surfaces=surfaces,
                          echo=click.echo, progress=progress,
                          skip_without_table=skip_without_table)


@main.command()
def serve() -> None:
    """Serve the API (the database must be up and migrated)."""
    _ensure_database(quiet=True)
    _serve()


def _serve() -> None:
    import socket

    import uvicorn

    from landplatform.app import create_app

    settings = get_settings()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((settings.host, settings.port))
        except OSError:
            raise click.ClickException(
                f"port {settings.port} on {settings.host} is in use: stop what runs there "
                f"or choose another with PORT=...") from None
    app = create_app(settings)
    base = settings.base_url
    districts = [k for k in app.state.pygeoapi_config["resources"] if k.startswith("parcels-")]
    click.echo(f"\nServing on {base}")
    click.echo(f"  landing page   {base}/")
    click.echo(f"  collections    {base}/collections")
    for key in districts[:10]:
        click.echo(f"  district       {base}/collections/{key}/items")
    if len(districts) > 10:
        click.echo(f"  ... and {len(districts) - 10} more districts")
    click.echo(f"  health         {base}/health")
    click.echo(f"  API docs       {base}/openapi?f=html")
    if districts:
        click.echo(f"  QGIS / GDAL    ogrinfo -so OAPIF:{base} {districts[0]}")
    click.echo("")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                access_log=False)


@main.command()
@click.option("--samples/--no-samples", default=True, show_default=True,
              help="Load data/samples.")
@click.option("--serve/--no-serve", "do_serve", default=True, show_default=True)
def up(samples: bool, do_serve: bool) -> None:
    """Bring the platform up: database, schema, sample data, API."""
    _ensure_database()
    _migrate()
    if samples and not _load_samples(get_settings().samples_dir):
        raise click.ClickException("sample data did not load (see above)")
    if samples:  # value what has parcels and a price table, unless nothing changed
        _valuate(None, if_changed=True, skip_without_table=True)
    if do_serve:
        _serve()


@main.group()
def db() -> None:
    """The embedded PostGIS cluster (ignored when DATABASE_URL is set)."""


@db.command("start")
def db_start() -> None:
    _ensure_database()


@db.command("stop")
def db_stop() -> None:
    from landplatform.db import embedded_cluster

    cluster = embedded_cluster()
    cluster.stop()
    click.echo(f"PostGIS: embedded cluster at {cluster.root} stopped")


@db.command("status")
def db_status() -> None:
    from landplatform.db import embedded_cluster

    settings = get_settings()
    if settings.database_url:
        click.echo("DATABASE_URL is set: the embedded cluster is not used")
        return
    cluster = embedded_cluster(settings)
    state = "running" if cluster.is_running() else "stopped"
    click.echo(f"PostGIS: embedded cluster at {cluster.root} is {state} "
               f"(127.0.0.1:{cluster.port})")


@db.command("url")
def db_url() -> None:
    from landplatform.db import database_url

    click.echo(database_url().render_as_string(hide_password=False))


if __name__ == "__main__":
    main()
