"""A province's partitions are made by its first load: built apart, then attached.

0020 made every province's partitions up front, empty, and a DEFAULT partition. A first
load into a province then wrote into partitions that had their indexes and keys already:
each row maintained six parcel indexes (one GiST) and checked its foreign keys one at a
time, most of a first load's merge. Now a province has no partitions until its first
load, which makes them (``cadastre.partitions``, ``cadastre.merge``):

- ``cadastre.build_partitions(districts)``: for those of ``districts`` no partition
  holds yet, per province, the seven tables its partitions will be, plain, without an
  index or a key, with the application's rights on them that it has on the parents, and
  the identity columns drawing from the parents' sequences, for all the province's
  districts the reference data knows and no partition holds; the tables carry the
  suffix ``p<province>`` (``p<province><n>`` for districts the reference learnt after
  the province had its partitions). Returns (suffix, districts). Tables a transaction
  built and committed without attaching are made again.
- the load writes its rows of those districts into them, set-wise;
- ``cadastre.attach_partitions(suffix, districts)``: registers the districts
  (``cadastre.partition_district``), then ``ATTACH PARTITION`` each table, which builds
  its indexes from the data (a sorted build, not row by row) and validates the parents'
  foreign keys with one join each; then the keys between partitions (0020's, kept in
  ``cadastre.partition_key``), validated likewise.

Both run as the owner (SECURITY DEFINER), do only that, and are the application role's
alone; everything happens in the load's transaction, so a failure leaves nothing behind.
``ATTACH`` takes a SHARE UPDATE EXCLUSIVE lock on the parents (reads and writes of the
other provinces go on) and an ACCESS EXCLUSIVE one on a DEFAULT partition if there is one
(a national read that does not prune waits for the load's commit then).

The upgrade drops every partition set (a province's, and the DEFAULT) that holds no row in
any of the seven tables; a DEFAULT that holds rows is kept, and its districts are not
built apart (their rows stay where they are). The downgrade makes the missing province
partitions and the DEFAULT again, empty, as 0020 did.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02
"""

from __future__ import annotations

import re

from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection

from landplatform.migrate import sibling_migration

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


# 0020: its tables and key helpers.
P0020 = sibling_migration(__file__, "0020_partition_by_district.py")
TABLES = [t.name for t in P0020.TABLES]
# Dropped referencing tables first; the parcels last (detached first: other domains'
# keys on the parent hold a key on each of its partitions).
DROP_ORDER = ("cadastre.parcel_lineage", "cadastre.parcel_land_use", "restricted.land_right",
              "restricted.encumbrance", "cadastre.parcel_history", "cadastre.parcel_event",
              "cadastre.parcel")
SQL_TABLES = "ARRAY[" + ", ".join(f"'{t}'" for t in TABLES) + "]"
# The districts' province and the latest version of each (as 0020 placed them).
KNOWN = """
    SELECT DISTINCT ON (code) code, parent_code FROM admin.admin_unit
     WHERE level = 'district' AND parent_code IS NOT NULL
     ORDER BY code, valid_from DESC NULLS LAST
"""

BUILD = f"""
CREATE FUNCTION cadastre.build_partitions(districts text[])
RETURNS TABLE (suffix text, members text[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  g record; col record; acl record;
  t text; target text; sfx text; k int; kept text[]; found text[]; rel regclass;
BEGIN
  FOR g IN
    WITH known AS ({KNOWN}),
    unplaced AS (
      SELECT k.code, k.parent_code FROM known k
       WHERE NOT EXISTS (SELECT 1 FROM cadastre.partition_district p
                          WHERE p.district_code = k.code))
    SELECT u.parent_code AS province, array_agg(u.code ORDER BY u.code) AS codes
      FROM unplaced u
     WHERE u.parent_code IN (SELECT parent_code FROM unplaced WHERE code = ANY(districts))
     GROUP BY u.parent_code ORDER BY u.parent_code
  LOOP
    kept := g.codes;
    -- districts whose rows a DEFAULT partition holds stay there (ATTACH would refuse)
    FOREACH t IN ARRAY {SQL_TABLES} LOOP
      target := t || '_default';
      IF to_regclass(target) IS NOT NULL THEN
        EXECUTE format('SELECT coalesce(array_agg(DISTINCT %I), ''{{}}'') FROM %s '
                       'WHERE %I = ANY($1)', cadastre._partition_column(t), target,
                       cadastre._partition_column(t))
           INTO found USING kept;
        kept := ARRAY(SELECT d FROM unnest(kept) d WHERE d <> ALL(found));
      END IF;
    END LOOP;
    CONTINUE WHEN cardinality(kept) = 0;
    sfx := 'p' || g.province;
    k := 1;
    LOOP
      rel := to_regclass('cadastre.parcel_' || sfx);
      EXIT WHEN rel IS NULL;
      IF NOT (SELECT relispartition FROM pg_class WHERE oid = rel) THEN
        -- built by a transaction that committed without attaching them: made again
        FOREACH t IN ARRAY {SQL_TABLES} LOOP
          EXECUTE format('DROP TABLE IF EXISTS %s', t || '_' || sfx);
        END LOOP;
        EXIT;
      END IF;
      k := k + 1;
      sfx := 'p' || g.province || k;
    END LOOP;
    FOREACH t IN ARRAY {SQL_TABLES} LOOP
      target := t || '_' || sfx;
      EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS '
                     'INCLUDING STORAGE)', target, t);
      FOR col IN SELECT a.attname, pg_get_serial_sequence(t, a.attname) AS seq
                   FROM pg_attribute a
                  WHERE a.attrelid = CAST(t AS regclass) AND a.attidentity <> ''
                    AND a.attnum > 0 LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT nextval(%L)',
                       target, col.attname, col.seq);
      END LOOP;
      FOR acl IN SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                             ELSE quote_ident(r.rolname) END AS grantee, a.privilege_type
                   FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
                   LEFT JOIN pg_roles r ON r.oid = a.grantee
                  WHERE c.oid = CAST(t AS regclass) AND a.grantee <> c.relowner LOOP
        EXECUTE format('GRANT %s ON %s TO %s', acl.privilege_type, target, acl.grantee);
      END LOOP;
    END LOOP;
    suffix := sfx;
    members := kept;
    RETURN NEXT;
  END LOOP;
END $$
"""

ATTACH = f"""
CREATE FUNCTION cadastre.attach_partitions(sfx text, districts text[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET maintenance_work_mem = '256MB' AS $$
DECLARE
  t text; target text; bound text; col record; fk record; province text;
BEGIN
  -- the districts of one province, known to the reference data, that no partition holds
  WITH known AS ({KNOWN})
  SELECT min(k.parent_code) INTO province FROM known k
   WHERE k.code = ANY(districts)
  HAVING count(DISTINCT k.parent_code) = 1 AND count(*) = cardinality(districts);
  IF province IS NULL OR sfx !~ ('^p' || province || '[0-9]*$') OR EXISTS (
       SELECT 1 FROM cadastre.partition_district WHERE district_code = ANY(districts)) THEN
    RAISE EXCEPTION 'attach_partitions: % are not districts of one province without '
                    'partitions, or % is not its suffix', districts, sfx
          USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO cadastre.partition_district (district_code, suffix)
  SELECT d, sfx FROM unnest(districts) d;
  SELECT string_agg(quote_literal(d), ', ' ORDER BY d) INTO bound FROM unnest(districts) d;
  FOREACH t IN ARRAY {SQL_TABLES} LOOP
    target := t || '_' || sfx;
    IF to_regclass(target) IS NULL OR (SELECT relispartition OR relkind <> 'r'
                                         FROM pg_class WHERE oid = to_regclass(target)) THEN
      RAISE EXCEPTION 'attach_partitions: % is not a table built for a partition', target
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR col IN SELECT a.attname FROM pg_attribute a
                WHERE a.attrelid = CAST(t AS regclass) AND a.attidentity <> ''
                  AND a.attnum > 0 LOOP  -- the parent's identity fills it from now on
      EXECUTE format('ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT', target, col.attname);
    END LOOP;
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES IN (%s)', t, target,
                   bound);
  END LOOP;
  FOR fk IN SELECT * FROM cadastre.partition_key ORDER BY table_name, name LOOP
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', fk.table_name || '_' || sfx,
                   fk.name || '_' || sfx, replace(fk.definition, '{{suffix}}', sfx));
  END LOOP;
END $$
"""

COLUMN = """
CREATE FUNCTION cadastre._partition_column(t text) RETURNS name
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
  SELECT a.attname FROM pg_partitioned_table p
    JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
   WHERE p.partrelid = CAST(t AS regclass)
$$
"""

APP_ONLY = """
DO $$
BEGIN
  REVOKE ALL ON FUNCTION cadastre.build_partitions(text[]) FROM PUBLIC;
  REVOKE ALL ON FUNCTION cadastre.attach_partitions(text, text[]) FROM PUBLIC;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lis_app') THEN
    GRANT EXECUTE ON FUNCTION cadastre.build_partitions(text[]) TO lis_app;
    GRANT EXECUTE ON FUNCTION cadastre.attach_partitions(text, text[]) TO lis_app;
  END IF;
END $$
"""


def _suffixes(conn: Connection) -> list[str]:
    """The partition suffixes of the parcels (every table has the same ones)."""
    return conn.execute(text("""
        SELECT substr(c.relname, length('parcel_') + 1) FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = CAST('cadastre.parcel' AS regclass) ORDER BY 1
    """)).scalars().all()


def _empty(conn: Connection, suffix: str) -> bool:
    return not any(conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {t}_{suffix})")).scalar()
                   for t in TABLES)


def _keys_between_partitions(conn: Connection) -> list[tuple[str, str, str]]:
    """0020's keys between partitions as (parent table, name, definition with
    ``{suffix}`` for the referenced partition's), from one partition set."""
    rows = conn.execute(text("""
        SELECT CAST(i.inhparent AS regclass)::text, c.conname, pg_get_constraintdef(c.oid),
               substr(r.relname, length(split_part(CAST(i.inhparent AS regclass)::text,
                                                   '.', 2)) + 2)
          FROM pg_constraint c JOIN pg_inherits i ON i.inhrelid = c.conrelid
          JOIN pg_class r ON r.oid = c.conrelid
         WHERE c.contype = 'f' AND c.conparentid = 0 AND i.inhparent = ANY(CAST(:t AS regclass[]))
           AND c.confrelid IN (SELECT inhrelid FROM pg_inherits
                                WHERE inhparent = ANY(CAST(:t AS regclass[])))
         ORDER BY 1, 2
    """), {"t": TABLES}).all()
    keys: set[tuple[str, str, str]] = set()
    for parent, name, definition, suffix in rows:
        if not name.endswith("_" + suffix):
            continue
        keys.add((parent, name[:-len(suffix) - 1],
                  re.sub(r"REFERENCES (\S+?)_" + re.escape(suffix) + r"\(",
                         r"REFERENCES \1_{suffix}(", definition)))
    return sorted(keys)


def _drop(conn: Connection, suffix: str) -> None:
    for table in DROP_ORDER:
        if table == "cadastre.parcel":
            conn.execute(text(f"ALTER TABLE {table} DETACH PARTITION {table}_{suffix}"))
        conn.execute(text(f"DROP TABLE {table}_{suffix}"))


def upgrade() -> None:
    conn = op.get_bind()
    conn.execute(text("""
        CREATE TABLE cadastre.partition_key (
            table_name text NOT NULL, name text NOT NULL, definition text NOT NULL,
            PRIMARY KEY (table_name, name))
    """))
    conn.execute(text("COMMENT ON TABLE cadastre.partition_key IS 'The foreign keys between "
                      "the partitions of two partitioned tables (migration 0020), made for "
                      "a province''s partitions when they are attached (0024).'"))
    for key in _keys_between_partitions(conn):
        conn.execute(text("INSERT INTO cadastre.partition_key VALUES (:t, :n, :d)"),
                     dict(zip(("t", "n", "d"), key, strict=True)))
    conn.execute(text("""
        CREATE TABLE cadastre.partition_district (
            district_code text PRIMARY KEY, suffix text NOT NULL)
    """))
    conn.execute(text("COMMENT ON TABLE cadastre.partition_district IS 'Which partition "
                      "(suffix) of the cadastre''s large tables holds a district (0024).'"))
    for suffix in _suffixes(conn):
        if _empty(conn, suffix):
            _drop(conn, suffix)
        elif suffix != "default":
            bound = conn.execute(text(
                "SELECT pg_get_expr(relpartbound, oid) FROM pg_class "
                "WHERE oid = CAST(:t AS regclass)"), {"t": f"cadastre.parcel_{suffix}"}
            ).scalar_one()
            for district in re.findall(r"'([^']*)'", bound):
                conn.execute(text("INSERT INTO cadastre.partition_district VALUES (:d, :s)"),
                             {"d": district, "s": suffix})
    conn.execute(text(COLUMN))
    conn.execute(text(BUILD))
    conn.execute(text(ATTACH))
    conn.execute(text(APP_ONLY))


def downgrade() -> None:
    conn = op.get_bind()
    keys = conn.execute(text("SELECT table_name, name, definition "
                             "FROM cadastre.partition_key")).all()
    placed = set(conn.execute(text(
        "SELECT district_code FROM cadastre.partition_district")).scalars())
    made = []
    for province, districts in P0020._provinces(conn):
        if conn.execute(text("SELECT to_regclass(:t)"),
                        {"t": f"cadastre.parcel_p{province}"}).scalar() is not None:
            continue
        values = ", ".join(P0020._literal(conn, d) for d in districts if d not in placed)
        if values:
            made.append((f"p{province}", f"FOR VALUES IN ({values})"))
    if conn.execute(text("SELECT to_regclass('cadastre.parcel_default')")).scalar() is None:
        made.append(("default", "DEFAULT"))
    for suffix, bound in made:
        for table in TABLES:
            conn.execute(text(f"CREATE TABLE {table}_{suffix} PARTITION OF {table} {bound}"))
        for table, name, definition in keys:
            conn.execute(text(f"ALTER TABLE {table}_{suffix} ADD CONSTRAINT {name}_{suffix} "
                              + definition.replace("{suffix}", suffix)))
    conn.execute(text("DROP FUNCTION cadastre.attach_partitions(text, text[])"))
    conn.execute(text("DROP FUNCTION cadastre.build_partitions(text[])"))
    conn.execute(text("DROP FUNCTION cadastre._partition_column(text)"))
    conn.execute(text("DROP TABLE cadastre.partition_district"))
    conn.execute(text("DROP TABLE cadastre.partition_key"))
