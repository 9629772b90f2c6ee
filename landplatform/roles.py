"""Least privilege in the database: three roles, and what each may do.

The server never runs as a superuser or as the owner of what it serves. A superuser runs
``sql/roles.sql`` once per database (``bootstrap``: the embedded cluster on start, ``lis db
roles`` on an external server, docker-compose's first start); it creates the roles and
hands the database to the schema owner. Migrations run as that owner and end with
``grant``, which gives the two login roles the server uses exactly their rights, schema by
schema, so a table a later migration adds is covered without a grant of its own:

- ``lis_owner``: owns everything; migrations only.
- ``lis_app``: the server's writes and the loaders. SELECT/INSERT/UPDATE/DELETE on the
  schemas the owner made (not TRUNCATE, TRIGGER or REFERENCES), SELECT on ``publish``,
  INSERT and nothing else on ``audit`` (so the log can be added to but not read back,
  changed, disabled or replaced), no CREATE anywhere but temporary tables; ANALYZE of the
  platform's tables through ``public.lis_analyze`` (migration 0014).
- ``lis_public``: the public read pool. SELECT on ``publish`` and the schema revision.

The names are fixed (they appear in the migrations' grants); their passwords are the
deployment's. docs/SECURITY.md, "Database roles", says how each attack is refused.
"""

from __future__ import annotations

from pathlib import Path

from psycopg import Connection as PgConnection
from sqlalchemy import text
from sqlalchemy.engine import Connection

OWNER = "lis_owner"
APP = "lis_app"
PUBLIC = "lis_public"
ROLES = (OWNER, APP, PUBLIC)
ROLES_SQL = Path(__file__).resolve().parent / "sql" / "roles.sql"

# Schemas whose rights are not the domain default (read/write for the app).
_SPECIAL = ("public", "publish", "audit")

GRANTS = f"""
DO $grants$
DECLARE
  s text;
  app boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP}');
  pub boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{PUBLIC}');
BEGIN
  FOR s IN SELECT nspname FROM pg_namespace
            WHERE nspowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
              AND nspname NOT IN ({", ".join(f"'{s}'" for s in _SPECIAL)})
              AND nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
  LOOP
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', s);
    IF app THEN
      EXECUTE format('GRANT USAGE ON SCHEMA %I TO {APP}', s);
      EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I '
                     'TO {APP}', s);
      EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO {APP}', s);
    END IF;
  END LOOP;
  IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'audit') THEN
    REVOKE ALL ON SCHEMA audit FROM PUBLIC;
    REVOKE ALL ON ALL TABLES IN SCHEMA audit FROM PUBLIC;
    IF app THEN
      GRANT USAGE ON SCHEMA audit TO {APP};
      REVOKE ALL ON ALL TABLES IN SCHEMA audit FROM {APP};
      GRANT INSERT ON ALL TABLES IN SCHEMA audit TO {APP};
      GRANT USAGE ON ALL SEQUENCES IN SCHEMA audit TO {APP};
    END IF;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'publish') THEN
    IF app THEN
      GRANT USAGE ON SCHEMA publish TO {APP};
      GRANT SELECT ON ALL TABLES IN SCHEMA publish TO {APP};
    END IF;
    IF pub THEN
      GRANT USAGE ON SCHEMA publish TO {PUBLIC};
      GRANT SELECT ON ALL TABLES IN SCHEMA publish TO {PUBLIC};
    END IF;
  END IF;
  IF to_regprocedure('public.lis_analyze(regclass)') IS NOT NULL THEN
    REVOKE ALL ON FUNCTION public.lis_analyze(regclass) FROM PUBLIC;
    IF app THEN GRANT EXECUTE ON FUNCTION public.lis_analyze(regclass) TO {APP}; END IF;
  END IF;
  -- One user for everything (a deployment without the roles, migrating as its
  -- DATABASE_URL's user): its public pool runs SET ROLE lis_public, which a non-superuser
  -- may only as a member. The roles' bootstrap removes the membership again.
  IF pub AND current_user NOT IN ('{OWNER}', '{APP}', '{PUBLIC}')
     AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
     AND NOT pg_has_role(current_user, '{PUBLIC}', 'MEMBER') THEN
    BEGIN
      EXECUTE format('GRANT {PUBLIC} TO %I', current_user);
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE WARNING 'cannot make % a member of {PUBLIC}: set LIS_PUBLIC_DATABASE_URL',
                    current_user;
    END;
  END IF;
  IF to_regclass('public.alembic_version') IS NOT NULL THEN
    IF app THEN GRANT SELECT ON public.alembic_version TO {APP}; END IF;
    IF pub THEN GRANT SELECT ON public.alembic_version TO {PUBLIC}; END IF;
  END IF;
END
$grants$
"""


def bootstrap(conn: PgConnection, passwords: dict[str, str]) -> None:
    """As a superuser on the platform's database: the roles (``passwords``: role name ->
    password; a role left out keeps its password), PostGIS, and the database with every
    object in it handed to the owner. Idempotent."""
    unknown = set(passwords) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
    for role in ROLES:
        conn.execute("SELECT set_config(%s, %s, false)",
                     (f"lis.{role.removeprefix('lis_')}_password", passwords.get(role, "")))
    try:
        conn.execute(ROLES_SQL.read_text(encoding="utf-8"))
    finally:  # the passwords do not outlive the statement in the session
        for role in ROLES:
            conn.execute("SELECT set_config(%s, '', false)",
                         (f"lis.{role.removeprefix('lis_')}_password",))


def grant(conn: Connection) -> None:
    """As the owner, after migrating: each login role's rights on what exists now."""
    conn.execute(text(GRANTS))


def warnings(conn: Connection) -> list[str]:
    """What is wrong with the role this connection logged in as, for the server to run on:
    a superuser, or the owner of the audit log, can rewrite it."""
    row = conn.execute(text("""
        SELECT r.rolname, r.rolsuper,
               EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = 'audit' AND c.relowner = r.oid) AS owns_audit
          FROM pg_roles r WHERE r.rolname = session_user
    """)).one()
    found = []
    if row.rolsuper:
        found.append(f"DATABASE_URL logs in as {row.rolname}, a superuser")
    elif row.owns_audit:
        found.append(f"DATABASE_URL logs in as {row.rolname}, the owner of audit.*")
    return found
