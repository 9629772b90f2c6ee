-- The platform's three database roles, and the database handed to the schema owner.
--
-- Run as a superuser, connected to the platform's database, by `lis db roles` (an external
-- server), by the embedded cluster on every start, and by docker-compose's first start
-- (deploy/initdb-roles.sh). Idempotent: run again, it only corrects what drifted.
--
-- Passwords come from the session settings lis.owner_password, lis.app_password and
-- lis.public_password (set with set_config first; an unset or empty one leaves that role's
-- password as it is), so no password is ever spliced into this file.
--
--   lis_owner   owns the database, its schemas and every object: used by migrations only
--   lis_app     the server and the loaders: reads and writes the domain schemas, INSERT
--               only on audit.*, no ownership, no CREATE (grants: landplatform/roles.py)
--   lis_public  the public read pool: SELECT on publish.* and nothing else
-- None is a superuser or can create roles or databases; none is a member of another, so
-- there is nothing to SET ROLE or RESET ROLE to. Superuser-only settings such as
-- session_replication_role are out of reach of all three.

DO $roles$
DECLARE
  r record;
  pw text;
BEGIN
  FOR r IN SELECT * FROM (VALUES ('lis_owner', 'lis.owner_password'),
                                 ('lis_app', 'lis.app_password'),
                                 ('lis_public', 'lis.public_password')) AS v(name, setting)
  LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.name) THEN
      EXECUTE format('CREATE ROLE %I', r.name);
    END IF;
    EXECUTE format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION '
                   'NOBYPASSRLS INHERIT', r.name);
    pw := current_setting(r.setting, true);
    IF coalesce(pw, '') <> '' THEN
      EXECUTE format('ALTER ROLE %I PASSWORD %L', r.name, pw);
    END IF;
  END LOOP;
  -- No role is a member of another (an earlier schema granted lis_public to the superuser
  -- that ran it: harmless for a superuser, removed anyway).
  FOR r IN SELECT g.rolname AS granted, m.rolname AS member
             FROM pg_auth_members a
             JOIN pg_roles g ON g.oid = a.roleid
             JOIN pg_roles m ON m.oid = a.member
            WHERE g.rolname IN ('lis_owner', 'lis_app', 'lis_public')
               OR m.rolname IN ('lis_owner', 'lis_app', 'lis_public')
  LOOP
    EXECUTE format('REVOKE %I FROM %I', r.granted, r.member);
  END LOOP;
END
$roles$;

CREATE EXTENSION IF NOT EXISTS postgis;

DO $owner$
DECLARE
  r record;
BEGIN
  EXECUTE format('ALTER DATABASE %I OWNER TO lis_owner', current_database());
  -- Temporary tables are for the loaders (staging) and migrations, not for the public role.
  EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO lis_owner, lis_app',
                 current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO lis_public', current_database());
  -- A database migrated before the roles existed: hand its schemas and objects over to the
  -- owner (extension members such as PostGIS's stay with the extension).
  FOR r IN SELECT n.nspname FROM pg_namespace n
            WHERE n.nspname NOT IN ('public', 'information_schema')
              AND n.nspname NOT LIKE 'pg\_%'
              AND n.nspowner <> 'lis_owner'::regrole
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                                 AND d.objid = n.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER SCHEMA %I OWNER TO lis_owner', r.nspname);
  END LOOP;
  FOR r IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname NOT IN ('information_schema') AND n.nspname NOT LIKE 'pg\_%'
              AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
              AND c.relowner <> 'lis_owner'::regrole
              -- a partition depends on its parent ('a') yet has an owner of its own; a
              -- partitioned table depends on its own key columns ('i')
              AND (c.relispartition
                   OR NOT EXISTS (SELECT 1 FROM pg_depend d
                                   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                     AND d.refobjid <> c.oid
                                     AND d.deptype IN ('e', 'a', 'i')))
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO lis_owner',
                   CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                  WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
                                  ELSE 'TABLE' END, r.name);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname NOT IN ('information_schema') AND n.nspname NOT LIKE 'pg\_%'
              AND p.proowner <> 'lis_owner'::regrole
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                                 AND d.objid = p.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO lis_owner', r.name);
  END LOOP;
  FOR r IN SELECT t.oid::regtype AS name FROM pg_type t
             JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE n.nspname NOT IN ('information_schema') AND n.nspname NOT LIKE 'pg\_%'
              AND t.typtype IN ('e', 'd') AND t.typowner <> 'lis_owner'::regrole
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                                 AND d.objid = t.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER TYPE %s OWNER TO lis_owner', r.name);
  END LOOP;
END
$owner$;
