"""The cadastre's large tables, partitioned by district (declarative LIST partitioning).

A district's parcels, versions, land-use parts, events, lineage edges, rights and
encumbrances are what nearly every request asks for (a collection per district, a parcel
by its key, a delivery's merge); partitioned on ``district_code`` a query for one district
reads one partition and its indexes only, and a table grows by partitions instead of by
one ever deeper index. It is PostgreSQL's own machinery, no sharding layer of ours
(docs/SCALING.md).

The shape:

- one LIST partition per province, holding the districts of that province as
  ``admin.admin_unit`` knows them (every known district, whether or not it has parcels
  yet), named ``<table>_p<province code>``; a district query prunes to its province's
  partition. Per province rather than per district: about 63 partitions a table instead
  of about 700, so a national query (a bbox, a national collection) plans over tens of
  partitions, not hundreds;
- a DEFAULT partition (``<table>_default``) for a district code no province lists (a
  unit the reference data learns later): such rows are kept and served, only not pruned;
  docs/SCALING.md says how to move them into a province's partition;
- the partition key in every primary key and unique constraint (PostgreSQL requires it):
  ``parcel_history``, ``parcel_event``, ``land_right`` and ``encumbrance`` get
  ``(district_code, <id>)``; ``parcel_lineage`` is partitioned by its child's district and
  keyed ``(child_district_code, event_id, parent_uid, child_uid)``; its event is found by
  ``(child_district_code, event_id)``: every writer (a delivery's merge, a dossier) records
  a lineage edge's event in the child's district, and the foreign key now says so;
- a foreign key between two of these tables (land-use parts, rights, encumbrances to
  their parcel; a lineage edge to its event) is one key per pair of partitions with the
  same suffix, checked as a plain table's (``_add_foreign_key`` says why).

Conversion happens in place, in the migration's transaction: each table is copied into its
partitioned successor, which takes the old one's name, columns, defaults, checks,
comments, indexes (same names), triggers, identity (continuing where it was) and foreign
keys; the views over these tables (``publish.*`` and any a later migration of another
domain made) and the foreign keys other tables hold on them are recreated as they were,
with their grants. The copy locks the tables for its duration; docs/SCALING.md gives the measured
time. ``downgrade`` converts back to plain tables the same way.

Revision ID: 0020
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

import re
from typing import NamedTuple

from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection

revision = "0020"
down_revision = "0017"
branch_labels = None
depends_on = None


class Table(NamedTuple):
    """A table to (un)partition: its partition key and both primary keys."""

    name: str  # schema-qualified
    key: str  # partition column
    pk: tuple[str, ...]  # partitioned
    plain_pk: tuple[str, ...]  # before partitioning


TABLES = (
    Table("cadastre.parcel", "district_code", ("district_code", "uid"),
          ("district_code", "uid")),
    Table("cadastre.parcel_history", "district_code", ("district_code", "history_id"),
          ("history_id",)),
    Table("cadastre.parcel_land_use", "district_code",
          ("district_code", "parcel_uid", "seq"), ("district_code", "parcel_uid", "seq")),
    Table("cadastre.parcel_event", "district_code", ("district_code", "event_id"),
          ("event_id",)),
    Table("cadastre.parcel_lineage", "child_district_code",
          ("child_district_code", "event_id", "parent_uid", "child_uid"),
          ("event_id", "parent_uid", "child_uid")),
    Table("restricted.land_right", "district_code", ("district_code", "right_id"),
          ("right_id",)),
    Table("restricted.encumbrance", "district_code", ("district_code", "encumbrance_id"),
          ("encumbrance_id",)),
)

# The lineage edge's event: by id alone on plain tables, with the child's district on
# partitioned ones (parcel_event's key includes its partition key).
LINEAGE_EVENT_FK = "parcel_lineage_event_id_fkey"
PARTITION_SUFFIX = r"_(p[0-9]+|default)"
LINEAGE_EVENT = {
    True: "FOREIGN KEY (child_district_code, event_id) "
          "REFERENCES cadastre.parcel_event(district_code, event_id)",
    False: "FOREIGN KEY (event_id) REFERENCES cadastre.parcel_event(event_id)",
}

# Views (and materialized views) depending, directly or through other views, on the
# tables, deepest last: they are dropped and recreated around the conversion.
DEPENDENT_VIEWS = """
    WITH RECURSIVE dep(oid, depth) AS (
        SELECT DISTINCT r.ev_class, 1
          FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
         WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = ANY(CAST(:t AS oid[]))
           AND r.ev_class <> d.refobjid
        UNION ALL
        SELECT DISTINCT r.ev_class, dep.depth + 1
          FROM dep JOIN pg_depend d ON d.refobjid = dep.oid
                                   AND d.classid = 'pg_rewrite'::regclass
          JOIN pg_rewrite r ON r.oid = d.objid
         WHERE r.ev_class <> dep.oid AND dep.depth < 20)
    SELECT c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name,
           c.relkind, pg_get_viewdef(c.oid) AS definition, c.reloptions,
           obj_description(c.oid, 'pg_class') AS comment, max(dep.depth) AS depth
      FROM dep JOIN pg_class c ON c.oid = dep.oid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     GROUP BY c.oid, n.nspname, c.relname
     ORDER BY max(dep.depth), c.oid
"""

GRANTS_OF = """
    SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END AS grantee,
           a.privilege_type
      FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
      LEFT JOIN pg_roles r ON r.oid = a.grantee
     WHERE c.oid = :oid AND a.grantee <> c.relowner
"""


def _oids(conn: Connection) -> list[int]:
    return [conn.execute(text("SELECT CAST(CAST(:t AS regclass) AS oid)"),
                         {"t": t.name}).scalar_one() for t in TABLES]


def _save_views(conn: Connection, oids: list[int]) -> list[dict]:
    views = [dict(r._mapping) for r in conn.execute(text(DEPENDENT_VIEWS), {"t": oids})]
    for view in views:
        view["grants"] = conn.execute(text(GRANTS_OF), {"oid": view["oid"]}).all()
        view["indexes"] = conn.execute(text(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = :oid"),
            {"oid": view["oid"]}).scalars().all()
    for view in reversed(views):
        kind = "MATERIALIZED VIEW" if view["relkind"] == "m" else "VIEW"
        conn.execute(text(f"DROP {kind} {view['name']}"))
    return views


def _restore_views(conn: Connection, views: list[dict]) -> None:
    for view in views:
        kind = "MATERIALIZED VIEW" if view["relkind"] == "m" else "VIEW"
        options = f" WITH ({', '.join(view['reloptions'])})" if view["reloptions"] else ""
        conn.execute(text(f"CREATE {kind} {view['name']}{options} AS "
                          f"{view['definition'].rstrip().rstrip(';')}"))
        for index in view["indexes"]:
            conn.execute(text(index))
        if view["comment"] is not None:
            conn.execute(text(f"COMMENT ON {kind} {view['name']} IS "
                              f"{_literal(conn, view['comment'])}"))
        for grantee, privilege in view["grants"]:
            conn.execute(text(f"GRANT {privilege} ON {view['name']} TO {grantee}"))


def _literal(conn: Connection, value: str) -> str:
    """A string as an SQL literal (for the statements that take no parameters)."""
    return conn.execute(text("SELECT quote_literal(CAST(:v AS text))"),
                        {"v": value}).scalar_one()


def _save_foreign_keys(conn: Connection, oids: list[int]) -> list[tuple[str, str, str]]:
    """Every foreign key from or to the tables (table, name, definition), dropped (the
    tables refer to each other, and each is dropped and made again). Those between
    partitions (``_partitionwise``) come back as the one key on the parents they stand for.
    """
    rows = conn.execute(text("""
        SELECT CAST(conrelid AS regclass)::text, quote_ident(conname),
               pg_get_constraintdef(oid)
          FROM pg_constraint
         WHERE contype = 'f' AND conparentid = 0 AND (conrelid = ANY(CAST(:t AS oid[]))
                                                   OR confrelid = ANY(CAST(:t AS oid[])))
         ORDER BY conrelid, conname
    """), {"t": oids}).all()
    between = conn.execute(text("""
        SELECT CAST(c.conrelid AS regclass)::text, quote_ident(c.conname),
               pg_get_constraintdef(c.oid), CAST(i.inhparent AS regclass)::text
          FROM pg_constraint c JOIN pg_inherits i ON i.inhrelid = c.conrelid
         WHERE c.contype = 'f' AND c.conparentid = 0 AND i.inhparent = ANY(CAST(:t AS oid[]))
           AND c.confrelid IN (SELECT inhrelid FROM pg_inherits
                                WHERE inhparent = ANY(CAST(:t AS oid[])))
         ORDER BY 1, 2
    """), {"t": oids}).all()
    for table, name, _ in rows:
        conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {name}"))
    keys = [tuple(row) for row in rows]
    for table, name, definition, parent in between:
        conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {name}"))
        key = (parent, re.sub(PARTITION_SUFFIX + "$", "", name),
               re.sub(r"REFERENCES (\S+?)" + PARTITION_SUFFIX + r"\(", r"REFERENCES \1(",
                      definition))
        if key not in keys:
            keys.append(key)
    return keys


def _add_foreign_key(conn: Connection, table: str, name: str, definition: str,
                     partitioned: bool, suffixes: list[str]) -> None:
    """A foreign key; between two partitioned tables, one per pair of partitions.

    Both tables are partitioned alike (the same districts in the same province's
    partition), so a row and the row it refers to share a partition suffix, and a key
    between the two partitions says all the key on the parents says. PostgreSQL checks a
    key on a partitioned parent by a look-up that prunes partitions row by row: inserting
    a delivery's land-use parts took three times as long as with the keys between
    partitions, which are checked like any plain table's (docs/SCALING.md).
    """
    referenced = re.search(r"REFERENCES (\S+?)\(", definition).group(1)
    names = {t.name for t in TABLES}
    if not (partitioned and table in names and referenced in names):
        conn.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"))
        return
    for suffix in suffixes:
        pair = definition.replace(f"REFERENCES {referenced}(",
                                  f"REFERENCES {referenced}_{suffix}(", 1)
        conn.execute(text(f"ALTER TABLE {table}_{suffix} ADD CONSTRAINT {name}_{suffix} "
                          f"{pair}"))


def _provinces(conn: Connection) -> list[tuple[str, list[str]]]:
    """Every province with the districts the reference data puts in it (latest version
    of each district: a code names one district)."""
    return [(p, list(ds)) for p, ds in conn.execute(text("""
        SELECT parent_code, array_agg(code ORDER BY code)
          FROM (SELECT DISTINCT ON (code) code, parent_code FROM admin.admin_unit
                 WHERE level = 'district' AND parent_code IS NOT NULL
                 ORDER BY code, valid_from DESC NULLS LAST) d
         GROUP BY parent_code ORDER BY parent_code
    """)).all()]


def _convert(conn: Connection, table: Table, partitioned: bool,
             provinces: list[tuple[str, list[str]]]) -> int:
    """Replace ``table`` by a (non-)partitioned copy of itself under the same name; the
    rows copied."""
    schema, name = table.name.split(".")
    old = f"{schema}.{name}"
    indexes = conn.execute(text("""
        SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
         WHERE i.indrelid = CAST(:t AS regclass)
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
         ORDER BY i.indexrelid
    """), {"t": old}).scalars().all()
    uniques = conn.execute(text("""
        SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conrelid = CAST(:t AS regclass) AND contype = 'u' ORDER BY conname
    """), {"t": old}).all()
    pk_name = conn.execute(text("""
        SELECT quote_ident(conname) FROM pg_constraint
         WHERE conrelid = CAST(:t AS regclass) AND contype = 'p'
    """), {"t": old}).scalar_one()
    identities = conn.execute(text("""
        SELECT a.attname, pg_get_serial_sequence(CAST(:t AS text), a.attname)
          FROM pg_attribute a
         WHERE a.attrelid = CAST(:t AS regclass) AND a.attidentity <> '' AND a.attnum > 0
    """), {"t": old}).all()
    comment = conn.execute(text("SELECT obj_description(CAST(:t AS regclass), 'pg_class')"),
                           {"t": old}).scalar_one()
    triggers = conn.execute(text("""
        SELECT pg_get_triggerdef(oid) FROM pg_trigger
         WHERE tgrelid = CAST(:t AS regclass) AND NOT tgisinternal AND tgparentid = 0
         ORDER BY tgname
    """), {"t": old}).scalars().all()
    new = f"{schema}.{name}_new"
    by = f" PARTITION BY LIST ({table.key})" if partitioned else ""
    conn.execute(text(f"CREATE TABLE {new} (LIKE {old} INCLUDING ALL EXCLUDING INDEXES)"
                      f"{by}"))
    if partitioned:
        for province, districts in provinces:
            values = ", ".join(_literal(conn, d) for d in districts)
            conn.execute(text(f"CREATE TABLE {schema}.{name}_p{province} PARTITION OF {new} "
                              f"FOR VALUES IN ({values})"))
        conn.execute(text(f"CREATE TABLE {schema}.{name}_default PARTITION OF {new} DEFAULT"))
    copied = conn.execute(text(
        f"INSERT INTO {new} OVERRIDING SYSTEM VALUE SELECT * FROM {old}")).rowcount
    restart = {}
    for column, sequence in identities:
        last, called = conn.execute(text(f"SELECT last_value, is_called FROM {sequence}")).one()
        restart[column] = last + 1 if called else last
    conn.execute(text(f"DROP TABLE {old}"))
    conn.execute(text(f"ALTER TABLE {new} RENAME TO {name}"))
    pk = table.pk if partitioned else table.plain_pk
    conn.execute(text(f"ALTER TABLE {old} ADD CONSTRAINT {pk_name} PRIMARY KEY "
                      f"({', '.join(pk)})"))
    for unique, definition in uniques:
        conn.execute(text(f"ALTER TABLE {old} ADD CONSTRAINT {unique} {definition}"))
    for index in indexes:  # a partitioned table's are "ON ONLY" it: these are for all
        conn.execute(text(index.replace(" ON ONLY ", " ON ", 1)))
    for column, value in restart.items():
        conn.execute(text(f"ALTER TABLE {old} ALTER COLUMN {column} RESTART WITH {value}"))
        sequence = conn.execute(text("SELECT pg_get_serial_sequence(CAST(:t AS text), :c)"),
                                {"t": old, "c": column}).scalar_one()
        conn.execute(text(f"ALTER SEQUENCE {sequence} RENAME TO {name}_{column}_seq"))
    if comment is not None:
        conn.execute(text(f"COMMENT ON TABLE {old} IS {_literal(conn, comment)}"))
    for trigger in triggers:  # (none so far; a later migration's would be kept)
        conn.execute(text(trigger))
    return copied


def _run(partitioned: bool) -> None:
    conn = op.get_bind()
    oids = _oids(conn)
    views = _save_views(conn, oids)
    foreign_keys = _save_foreign_keys(conn, oids)
    provinces = _provinces(conn)
    copied = {table: _convert(conn, table, partitioned, provinces) for table in TABLES}
    suffixes = [f"p{province}" for province, _ in provinces] + ["default"]
    for table, name, definition in foreign_keys:
        if name == LINEAGE_EVENT_FK:
            definition = LINEAGE_EVENT[partitioned]
        _add_foreign_key(conn, table, name, definition, partitioned, suffixes)
    _restore_views(conn, views)
    # The copies start without statistics: analysed where there were rows; an empty
    # table stays "never analysed", which the loader's statistics refresh recognises.
    for table, rows in copied.items():
        if rows:
            conn.execute(text(f"ANALYZE {table.name}"))


def upgrade() -> None:
    _run(partitioned=True)


def downgrade() -> None:
    _run(partitioned=False)
