"""Least privilege in the database (docs/SECURITY.md, "Database roles").

Each way the audit log was rewritten when the server ran as the cluster's superuser is
tried again as the application role, and each way out of the public role is tried as the
public role: every one must be refused by PostgreSQL itself. The database is the one the
session's server runs on (samples loaded as the application role).
"""

from __future__ import annotations

import httpx
import psycopg
import pytest
from psycopg import errors
from sqlalchemy.engine import URL

from landplatform.migrate import upgrade
from landplatform.roles import APP, OWNER, PUBLIC, ROLES, bootstrap
from lis import MIGRATIONS
from support import TEST_ROLE_PASSWORDS, role_url

DENIED = (errors.InsufficientPrivilege, errors.RaiseException)


def connect(url: URL) -> psycopg.Connection:
    return psycopg.connect(url.set(drivername="postgresql").render_as_string(
        hide_password=False), autocommit=True)


def refused(conn: psycopg.Connection, statement: str) -> str:
    """The error PostgreSQL gives for ``statement`` (fails the test if it succeeds)."""
    try:
        with conn.transaction():
            conn.execute(statement)
    except DENIED as exc:
        return str(exc)
    pytest.fail(f"{statement!r} was allowed")


@pytest.fixture()
def app_conn(api_db_url: URL):
    with connect(role_url(api_db_url, APP)) as conn:
        yield conn


@pytest.fixture()
def public_conn(api_db_url: URL):
    with connect(role_url(api_db_url, PUBLIC)) as conn:
        yield conn


def test_no_role_is_privileged_or_a_member_of_another(api_db_url: URL) -> None:
    with connect(api_db_url) as conn:
        rows = conn.execute(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication, "
            "rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = ANY(%s)",
            (list(ROLES),)).fetchall()
        members = conn.execute(
            "SELECT g.rolname, m.rolname FROM pg_auth_members a "
            "JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
            "WHERE g.rolname = ANY(%(r)s) OR m.rolname = ANY(%(r)s)",
            {"r": list(ROLES)}).fetchall()
    assert {r[0] for r in rows} == set(ROLES)
    for name, *privileged, can_login in rows:
        assert not any(privileged), name
        assert can_login, name
    assert members == []


def test_the_owner_owns_every_object_and_the_app_nothing(api_db_url: URL) -> None:
    with connect(api_db_url) as conn:
        owners = dict(conn.execute("""
            SELECT pg_get_userbyid(c.relowner), count(*) FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
               AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                  AND d.objid = c.oid AND d.deptype = 'e')
             GROUP BY 1""").fetchall())
        schemas = dict(conn.execute(
            "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace "
            "WHERE nspname IN ('admin', 'cadastre', 'restricted', 'etl', 'publish', 'audit', "
            "'planning', 'valuation')").fetchall())
        database_owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database "
            "WHERE datname = current_database()").fetchone()[0]
    assert set(owners) == {OWNER}, owners
    assert set(schemas.values()) == {OWNER} and len(schemas) == 8, schemas
    assert database_owner == OWNER


@pytest.mark.parametrize("statement", [
    # the three ways the log was rewritten as the superuser
    "SET LOCAL session_replication_role = replica",
    "ALTER TABLE audit.write_log DISABLE TRIGGER write_log_append_only",
    "CREATE OR REPLACE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ BEGIN RETURN OLD; END $$",
    # and the obvious ones
    "DROP TRIGGER write_log_append_only ON audit.write_log",
    "UPDATE audit.write_log SET actor_sub = 'someone else'",
    "DELETE FROM audit.write_log",
    "TRUNCATE audit.write_log",
    "SELECT count(*) FROM audit.write_log",
    "ALTER TABLE audit.write_log OWNER TO lis_app",
    "CREATE TABLE cadastre.shadow (a int)",
    "CREATE SCHEMA shadow",
    "CREATE TABLE public.shadow (a int)",
    "TRUNCATE cadastre.parcel",
    "ALTER TABLE cadastre.parcel DISABLE TRIGGER ALL",
    "SET ROLE lis_owner",
    "SET SESSION AUTHORIZATION lis_owner",
    "CREATE ROLE intruder",
    "ALTER ROLE lis_app SUPERUSER",
])
def test_the_application_role_cannot_rewrite_history(app_conn: psycopg.Connection,
                                                     statement: str) -> None:
    refused(app_conn, statement)


def test_the_application_role_can_append_to_the_audit_log(app_conn: psycopg.Connection
                                                          ) -> None:
    """INSERT is what the server needs; done in a transaction that is rolled back."""
    with pytest.raises(errors.InsufficientPrivilege), app_conn.transaction():
        # RETURNING needs SELECT, which the role has not: the insert itself is allowed
        app_conn.execute("INSERT INTO audit.write_log (actor_sub, actor_role, action) "
                         "VALUES ('test', 'admin', 'create') RETURNING id")
    with app_conn.transaction(force_rollback=True):
        app_conn.execute("INSERT INTO audit.write_log (actor_sub, actor_role, action) "
                         "VALUES ('test', 'admin', 'create')")


def test_the_public_role_reaches_nothing_but_publish(api_db_url: URL,
                                                     public_conn: psycopg.Connection) -> None:
    with connect(api_db_url) as conn:
        relations = [r[0] for r in conn.execute("""
            SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast',
                                     'public', 'publish')""")]
    schemas = {r.split(".")[0] for r in relations}
    assert {"restricted", "audit", "cadastre", "etl"} <= schemas
    for relation in relations:
        refused(public_conn, f"SELECT * FROM {relation} LIMIT 1")
    assert public_conn.execute("SELECT count(*) FROM publish.parcels").fetchone()[0] > 0


@pytest.mark.parametrize("statement", [
    "RESET ROLE; SELECT count(*) FROM restricted.party",
    "SET ROLE lis_app",
    "SET ROLE lis_owner",
    "SET SESSION AUTHORIZATION lis_app",
    "COPY restricted.party TO STDOUT",
    "CREATE TEMP TABLE scratch (a int)",
    "CREATE TABLE publish.scratch (a int)",
    "INSERT INTO publish.admin_units (code) VALUES ('x')",
    "SELECT pg_read_file('PG_VERSION')",
    "SELECT lo_import('/etc/passwd')",
    "SET session_replication_role = replica",
])
def test_the_public_role_has_nowhere_to_go(public_conn: psycopg.Connection,
                                           statement: str) -> None:
    refused(public_conn, statement)


def test_the_server_logs_in_as_the_application_and_public_roles(api: str,
                                                                api_db_url: URL) -> None:
    """The running server's pools, as PostgreSQL sees them: no superuser, no owner."""
    assert httpx.get(f"{api}/collections?f=json", timeout=30).status_code == 200
    with connect(api_db_url) as conn:
        users = {r[0] for r in conn.execute(
            "SELECT DISTINCT usename FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name LIKE 'lis-%'")}
    assert PUBLIC in users
    assert users <= {APP, PUBLIC}, users


def test_a_database_made_before_the_roles_is_handed_to_the_owner(server_url: URL) -> None:
    """An existing install: migrated by one superuser, then set up with the roles. Its
    objects change owner, its data stays, and the owner can migrate it from then on."""
    from sqlalchemy import text

    from landplatform.db import make_engine

    name = "lis_roles_adopt"
    with connect(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server_url.set(database=name)
    with connect(url) as conn:  # the old way: PostGIS and everything as the superuser
        conn.execute("CREATE EXTENSION postgis")
    legacy = make_engine(url)
    upgrade(legacy, MIGRATIONS)
    with legacy.begin() as conn:
        conn.execute(text("INSERT INTO audit.write_log (actor_sub, actor_role, action) "
                          "VALUES ('before', 'admin', 'create')"))
    legacy.dispose()
    try:
        with connect(url) as conn:
            bootstrap(conn, TEST_ROLE_PASSWORDS)
            bootstrap(conn, TEST_ROLE_PASSWORDS)  # idempotent
            not_owned = conn.execute("""
                SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname IN ('admin', 'cadastre', 'restricted', 'etl', 'publish',
                                     'audit')
                   AND c.relowner <> 'lis_owner'::regrole""").fetchone()[0]
            assert not_owned == 0
        owner = make_engine(role_url(url, OWNER))
        upgrade(owner, MIGRATIONS)  # nothing to do, but the grants run as the owner
        owner.dispose()
        with connect(role_url(url, APP)) as conn:
            refused(conn, "SELECT count(*) FROM audit.write_log")
            refused(conn, "ALTER TABLE audit.write_log DISABLE TRIGGER ALL")
            assert conn.execute("SELECT count(*) FROM admin.admin_unit").fetchone()[0] > 0
        with connect(url) as conn:
            assert conn.execute("SELECT actor_sub FROM audit.write_log").fetchone()[0] == "before"
    finally:
        with connect(server_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_compose_first_start_script_sets_up_the_roles(server_url: URL) -> None:
    """deploy/db/10-lis-roles.sh as the postgis image runs it (psql as the superuser), on a
    fresh database: the roles log in with the passwords given, none is printed."""
    import os
    import shutil
    import subprocess

    from landplatform.pgcluster import find_pg_bindir
    from support import PROJECT

    psql = shutil.which("psql") or str(find_pg_bindir() / "psql")
    name = "lis_roles_compose"
    with connect(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "PATH": f"{os.path.dirname(psql)}:{os.environ['PATH']}",
           "PGHOST": server_url.host or "127.0.0.1", "PGPORT": str(server_url.port or 5432),
           "PGPASSWORD": server_url.password or "", "POSTGRES_USER": server_url.username,
           "POSTGRES_DB": name, "LIS_ROLES_SQL": str(PROJECT / "landplatform/sql/roles.sql"),
           "LIS_DB_OWNER_PASSWORD": TEST_ROLE_PASSWORDS[OWNER],
           "LIS_DB_APP_PASSWORD": TEST_ROLE_PASSWORDS[APP],
           "LIS_DB_PUBLIC_PASSWORD": TEST_ROLE_PASSWORDS[PUBLIC]}
    try:
        proc = subprocess.run(["sh", str(PROJECT / "deploy/db/10-lis-roles.sh")], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        for password in TEST_ROLE_PASSWORDS.values():
            assert password not in proc.stdout + proc.stderr
        url = server_url.set(database=name)
        with connect(url) as conn:
            assert conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database "
                                "WHERE datname = current_database()").fetchone()[0] == OWNER
            assert conn.execute("SELECT count(*) FROM pg_extension "
                                "WHERE extname = 'postgis'").fetchone()[0] == 1
        for role in (OWNER, APP, PUBLIC):
            with connect(role_url(url, role)) as conn:
                assert conn.execute("SELECT current_user").fetchone()[0] == role
        missing = {**env, "LIS_DB_APP_PASSWORD": ""}
        del missing["LIS_DB_APP_PASSWORD"]
        proc = subprocess.run(["sh", str(PROJECT / "deploy/db/10-lis-roles.sh")],
                              env=missing, capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0 and "LIS_DB_APP_PASSWORD" in proc.stderr
    finally:
        with connect(server_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_lis_db_roles_sets_up_an_external_server(server_url: URL) -> None:
    """The path docs/SECURITY.md gives for an external DATABASE_URL: `lis db roles` with a
    superuser's URL once, then `lis migrate` as the owner; the configured URLs' passwords
    are kept (roles are cluster-wide: changing them would lock out other databases)."""
    import os
    import subprocess
    import sys

    from support import role_env

    name = "lis_roles_cli"
    with connect(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server_url.set(database=name)
    env = {**os.environ, **role_env(url)}
    admin = url.render_as_string(hide_password=False)
    try:
        proc = subprocess.run([sys.executable, "-m", "lis.cli", "db", "roles",
                               "--admin-url", admin], env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        printed = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
        assert printed == role_env(url)
        proc = subprocess.run([sys.executable, "-m", "lis.cli", "migrate"], env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        with connect(role_url(url, APP)) as conn:
            refused(conn, "SELECT count(*) FROM audit.write_log")
            assert conn.execute("SELECT count(*) FROM cadastre.land_use_type"
                                ).fetchone()[0] > 0
        bad = subprocess.run([sys.executable, "-m", "lis.cli", "db", "roles", "--admin-url",
                              role_url(url, APP).render_as_string(hide_password=False)],
                             env=env, capture_output=True, text=True, timeout=60)
        assert bad.returncode != 0 and "could not set up the roles" in bad.stderr
        assert TEST_ROLE_PASSWORDS[APP] not in bad.stderr
    finally:
        with connect(server_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_application_role_analyses_through_lis_analyze_only(app_conn: psycopg.Connection
                                                                ) -> None:
    """It owns no table, so plain ANALYZE skips them; lis_analyze runs it as the owner, for
    the platform's tables only (not the audit's, not the catalog's)."""
    app_conn.execute("SELECT public.lis_analyze('cadastre.parcel'::regclass)")
    for target in ("audit.write_log", "pg_catalog.pg_authid", "public.spatial_ref_sys"):
        refused(app_conn, f"SELECT public.lis_analyze('{target}'::regclass)")


def test_the_public_role_cannot_analyse(public_conn: psycopg.Connection) -> None:
    refused(public_conn, "SELECT public.lis_analyze('publish.parcels'::regclass)")


def test_one_non_superuser_for_everything_still_serves(server_url: URL) -> None:
    """A deployment from before the roles whose DATABASE_URL is an ordinary user that owns
    its database (a managed PostgreSQL): migrating as it keeps its public pool's SET ROLE
    lis_public working, and that pool still reads only publish.*."""
    from landplatform.db import make_engine

    name, user, password = "lis_roles_single", "lis_single_user", "single-user-pw"
    with connect(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f"DROP ROLE IF EXISTS {user}")
        conn.execute(f"CREATE ROLE {user} LOGIN CREATEROLE PASSWORD '{password}'")
        conn.execute(f'CREATE DATABASE "{name}" OWNER {user}')
    url = server_url.set(database=name)
    with connect(url) as conn:
        conn.execute("CREATE EXTENSION postgis")
    own = url.set(username=user, password=password)
    try:
        engine = make_engine(own)
        upgrade(engine, MIGRATIONS)
        engine.dispose()
        pool = make_engine(own, public=True, set_role=True)
        with pool.connect() as conn:
            from sqlalchemy import text

            assert conn.execute(text("SELECT current_user")).scalar() == PUBLIC
            assert conn.execute(text("SELECT count(*) FROM publish.admin_units")).scalar() > 0
        pool.dispose()
    finally:
        with connect(server_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f"REVOKE {PUBLIC} FROM {user}")
            conn.execute(f"DROP ROLE IF EXISTS {user}")
