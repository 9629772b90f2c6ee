"""``lis``: the platform's command line, built for a list of domains (``build_cli``).

The platform's own commands are here; each domain adds its own (``Domain.commands``, and
``Domain.load_commands`` under ``lis load``); the composition root (``lis.cli``) names the
domains. With the domains of this project:

    lis up                       embedded PostGIS (unless DATABASE_URL), migrate, samples, serve
    lis load parcels FILE ...    validate and load delivered parcel files
    lis load plan FILE ...       validate and load a plan's zones (metadata: options/.plan.yaml)
    lis load prices FILE ...     validate and load a land price table (Excel/CSV + .prices.yaml)
    lis load samples             load data/samples (files already loaded are skipped)
    lis valuate --district D     value a district's parcels by its price table, price surface
    lis planning overlay ...     a plan's zones on the parcels, to GeoPackage or CSV
    lis samples generate         (re)write data/samples with the deterministic generators
    lis parcel COMMUNE SHEET NO  look a parcel up
    lis runs                     recent load runs
    lis token issue --sub S --role officer|admin [--district D | --commune C] [--ttl 8h]
    lis migrate | serve | db start|stop|status|url|roles
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlalchemy.engine import Engine

from landplatform.domain import Domain, migration_locations
from landplatform.settings import Settings, get_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

# how long a serving worker may leave its supervisor unanswered (starting, or busy)
# before uvicorn restarts it
WORKER_START_S = 60
_EXTENSIONS: dict[str, tuple[object, ...]] = {}


def extensions() -> dict[str, tuple[object, ...]]:
    """The domains' contributions to extension points, for commands (``build_cli`` sets
    them; ``Domain.extensions``)."""
    return _EXTENSIONS


def engine() -> Engine:
    """The read/write engine of the configured database (for every command)."""
    from landplatform.db import get_engine

    return get_engine()


def ensure_database(quiet: bool = False) -> None:
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


def build_cli(domains: Sequence[Domain],
              create_app: Callable[[Settings], FastAPI]) -> click.Group:
    """The ``lis`` group for these domains; ``create_app`` builds the served app."""
    from landplatform.domain import extensions as gather

    _EXTENSIONS.clear()
    _EXTENSIONS.update(gather(domains))

    @click.group()
    @click.version_option(package_name="landplatform")
    def main() -> None:
        """Land-information platform: load land data into PostGIS, publish it as OGC APIs."""

    def migrate_schema() -> None:
        from landplatform.db import owner_engine
        from landplatform.migrate import current_heads, expected_heads, upgrade

        locations = migration_locations(domains)
        owner = owner_engine()  # migrations run as the schema owner, nothing else does
        try:
            before = current_heads(owner)
            upgrade(owner, locations)
        finally:
            owner.dispose()
        heads = expected_heads(locations)
        click.echo(f"Schema: {'up to date' if before == heads else 'migrated'} at "
                   f"{', '.join(sorted(heads))}")

    @main.command()
    def migrate() -> None:
        """Apply the schema migrations (every domain's branch)."""
        ensure_database()
        migrate_schema()

    @main.group()
    def load() -> None:
        """Load delivered files."""

    for command in (c for d in domains for c in d.load_commands):
        load.add_command(command)

    def load_all_samples(samples_dir: Path) -> bool:
        if not (samples_dir / "manifest.json").exists():
            raise click.ClickException(f"{samples_dir / 'manifest.json'} not found: run "
                                       "`lis samples generate`")
        ok = True
        for domain in domains:  # in the list's order: parcels before what refers to them
            if domain.load_samples:
                ok = domain.load_samples(engine(), samples_dir, click.echo) and ok
        return ok

    @load.command("samples")
    @click.option("--dir", "samples_dir", type=click.Path(path_type=Path),
                  help="Folder with manifest.json (default: data/samples).")
    def load_samples_cmd(samples_dir: Path | None) -> None:
        """Load the sample files; a file already loaded unchanged is skipped."""
        ensure_database(quiet=True)
        if not load_all_samples(samples_dir or get_settings().samples_dir):
            sys.exit(1)

    @main.group()
    def samples() -> None:
        """Sample data."""

    @samples.command("generate")
    @click.option("--out", type=click.Path(path_type=Path), help="Output folder.")
    @click.option("--seed", type=int, default=2025, show_default=True)
    @click.option("--scale", type=int,
                  help="Write one GeoPackage of N parcels (benchmarks) instead.")
    def samples_generate(out: Path | None, seed: int, scale: int | None) -> None:
        """Write the deterministic sample files (or a large file with --scale)."""
        folder = out or get_settings().samples_dir
        code = 0
        for domain in domains:
            if code == 0 and domain.generate_samples:
                code = domain.generate_samples(folder, seed, scale)
        sys.exit(code)

    @main.group()
    def token() -> None:
        """Bearer tokens of the embedded local issuer (docs/SECURITY.md)."""

    @token.command("issue")
    @click.option("--sub", required=True, help="Who the token is for (recorded in the audit "
                                                "log).")
    @click.option("--role", required=True, type=click.Choice(["officer", "admin"]))
    @click.option("--district", help="Pre-2025 district code an officer works in, e.g. 001 "
                                     "(the registration branch's area).")
    @click.option("--commune", help="Or: the commune since the 2025 reform an officer works "
                                    "in, e.g. 00004 (Phường Ba Đình).")
    @click.option("--ttl", default="8h", show_default=True, help="Lifetime: 30m, 8h, 2d, ...")
    def token_issue(sub: str, role: str, district: str | None, commune: str | None,
                    ttl: str) -> None:
        """Print a token signed with the local secret (refused when an external OIDC
        provider is configured: its tokens come from that provider)."""
        from landplatform.auth.tokens import (
            LOCAL_AUDIENCE,
            issue_local,
            local_secret,
            parse_ttl,
        )

        settings = get_settings()
        if settings.auth_jwks_url:
            raise click.ClickException("LIS_AUTH_JWKS_URL is set: tokens come from the "
                                       "external OIDC provider, not from `lis token issue`")
        try:
            click.echo(issue_local(local_secret(settings), sub=sub, role=role,
                                   district=district, commune=commune,
                                   ttl_s=parse_ttl(ttl),
                                   audience=settings.auth_audience or LOCAL_AUDIENCE))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc

    def serve_app() -> None:
        import socket

        import uvicorn

        settings = get_settings()
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((settings.host, settings.port))
            except OSError:
                raise click.ClickException(
                    f"port {settings.port} on {settings.host} is in use: stop what runs "
                    f"there or choose another with PORT=...") from None
        app = create_app(settings)
        for warning in role_warnings(settings):
            click.echo(f"WARNING: {warning} (docs/SECURITY.md, \"Database roles\")",
                       err=True)
        base = settings.base_url
        units = unit_collections(app.state.pygeoapi_config)
        click.echo(f"\nServing on {base}")
        click.echo(f"  landing page   {base}/")
        click.echo(f"  collections    {base}/collections")
        for key in units[:10]:
            click.echo(f"  district       {base}/collections/{key}/items")
        if len(units) > 10:
            click.echo(f"  ... and {len(units) - 10} more districts")
        click.echo(f"  health         {base}/health")
        click.echo(f"  API docs       {base}/openapi?f=html")
        if units:
            click.echo(f"  QGIS / GDAL    ogrinfo -so OAPIF:{base} {units[0]}")
        click.echo(f"  workers        {settings.workers} (LIS_WORKERS)")
        click.echo("")
        if settings.workers == 1:
            uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                        access_log=False)
            return
        # Several processes, so one core busy with a heavy request (an HTML page, an
        # overlay) leaves the others to answer cheap ones: each worker builds its own app.
        # The app built above served to check the configuration and print the banner.
        from landplatform.db import get_engine
        from landplatform.publish.engine import get_public_engine

        get_public_engine().dispose()
        get_engine().dispose()
        uvicorn.run(f"{create_app.__module__}:{create_app.__qualname__}", factory=True,
                    workers=settings.workers, host=settings.host, port=settings.port,
                    log_level="warning", access_log=False,
                    # uvicorn kills a worker that has not answered its supervisor within
                    # 5 s; importing and building the app takes longer than that on a busy
                    # 2-core machine, and the workers were restarted forever
                    timeout_worker_healthcheck=WORKER_START_S)

    @main.command()
    def serve() -> None:
        """Serve the API (the database must be up and migrated)."""
        ensure_database(quiet=True)
        serve_app()

    @main.command()
    @click.option("--samples/--no-samples", default=True, show_default=True,
                  help="Load data/samples.")
    @click.option("--serve/--no-serve", "do_serve", default=True, show_default=True)
    def up(samples: bool, do_serve: bool) -> None:
        """Bring the platform up: database, schema, sample data, API."""
        ensure_database()
        migrate_schema()
        settings = get_settings()
        if samples and not load_all_samples(settings.samples_dir):
            raise click.ClickException("sample data did not load (see above)")
        if samples:  # derived data (e.g. valuations), unless nothing changed
            for domain in domains:
                if domain.after_samples:
                    domain.after_samples(engine(), settings, click.echo)
        if do_serve:
            serve_app()

    @main.group()
    def db() -> None:
        """The embedded PostGIS cluster (ignored when DATABASE_URL is set)."""

    @db.command("start")
    def db_start() -> None:
        ensure_database()

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
    @click.option("--role", type=click.Choice(["app", "owner", "public", "admin"]),
                  default="app", show_default=True,
                  help="app: DATABASE_URL (the server, loads); owner: migrations; public: "
                       "the public read pool; admin: the embedded cluster's superuser.")
    def db_url(role: str) -> None:
        """Print the URL of one of the platform's database roles."""
        from landplatform.db import (
            database_url,
            embedded_cluster,
            owner_database_url,
            public_database_url,
        )

        settings = get_settings()
        if role == "admin":
            if settings.database_url:
                raise click.ClickException("DATABASE_URL is set: the superuser of that "
                                           "server is its administrator's, not ours")
            click.echo(embedded_cluster(settings).url)
            return
        url = {"app": lambda: database_url(settings),
               "owner": lambda: owner_database_url(settings),
               "public": lambda: public_database_url(settings)[0]}[role]()
        click.echo(url.render_as_string(hide_password=False))

    @db.command("roles")
    @click.option("--admin-url", required=True, envvar="LIS_ADMIN_DATABASE_URL",
                  help="A superuser's URL on the platform's database (used once, not kept).")
    def db_roles(admin_url: str) -> None:
        """Create or correct the three database roles on an external server and hand the
        database to the owner (docs/SECURITY.md, "Database roles").

        A role whose URL is configured (DATABASE_URL, LIS_OWNER_DATABASE_URL,
        LIS_PUBLIC_DATABASE_URL, with those roles' names) gets that URL's password;
        the others get a generated one. Prints the three URLs to configure.
        """
        import secrets

        import psycopg

        from landplatform.db import normalise_url
        from landplatform.roles import APP, OWNER, PUBLIC, bootstrap

        settings = get_settings()
        admin = normalise_url(admin_url)
        configured = {OWNER: settings.owner_database_url, APP: settings.database_url,
                      PUBLIC: settings.public_database_url}
        urls = {}
        for role, given in configured.items():
            url = normalise_url(given) if given else None
            if url is None or url.username != role or not url.password:
                url = admin.set(username=role, password=secrets.token_urlsafe(24))
            urls[role] = url
        conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
                bootstrap(conn, {role: url.password for role, url in urls.items()})
        except psycopg.Error as exc:
            raise click.ClickException(
                f"could not set up the roles: {str(exc).strip()}") from None
        click.echo("Roles ready. Configure (keep them secret; the server needs the last two, "
                   "migrations the first):")
        for env, role in (("LIS_OWNER_DATABASE_URL", OWNER), ("DATABASE_URL", APP),
                          ("LIS_PUBLIC_DATABASE_URL", PUBLIC)):
            click.echo(f"{env}={urls[role].render_as_string(hide_password=False)}")

    for command in (c for d in domains for c in d.commands):
        main.add_command(command)
    return main


def role_warnings(settings: Settings) -> list[str]:
    """What weakens the database's least privilege in this configuration."""
    from landplatform.roles import warnings

    found = []
    with engine().connect() as conn:
        found += warnings(conn)
    if settings.database_url and not settings.public_database_url:
        found.append("LIS_PUBLIC_DATABASE_URL is not set: public reads run as DATABASE_URL's "
                     "user after SET ROLE lis_public, which RESET ROLE undoes")
    return found


def unit_collections(config: dict) -> list[str]:
    """The per-district collections of the layers whose counts the loader keeps (the
    collections a land officer adds to QGIS): filtered by the counts' own key, so a
    collection filtered otherwise (a 2025 province's) is not listed as a district."""
    return [cid for cid, res in config["resources"].items()
            for p in res.get("providers", [])
            if p["type"] == "feature" and p["data"].get("counts") and p["data"].get("filter")
            and set(p["data"]["filter"]) == {p["data"]["counts"][1]}]
