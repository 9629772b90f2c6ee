"""A district's first load makes its province's partitions (cadastre migration 0024).

The cadastre's large tables are partitioned by province (0020); a province has no
partitions until a load brings parcels of it. Such a load builds the province's
partitions apart: plain tables without indexes or keys, written set-wise, then attached
(``ATTACH PARTITION`` builds the indexes from the data and validates the keys with one
join each). The database's owner does the DDL, through two functions that do only that;
the loader calls them as the application role. docs/ARCHITECTURE.md, "A first national
load", says why and what it costs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from etl.staging import advisory_lock


@dataclass(frozen=True)
class Built:
    """The tables built apart for one province's partitions: their suffix
    (``cadastre.parcel_<suffix>``, ...) and the districts they will hold."""

    suffix: str
    districts: tuple[str, ...]

    def table(self, name: str) -> str:
        """The table built for ``name``'s partition (``cadastre.parcel`` ->
        ``cadastre.parcel_p01``)."""
        return f"{name}_{self.suffix}"


def build(conn: Connection) -> list[Built]:
    """The partitions the staged districts lack, built apart (empty) in this
    transaction; [] when every staged district has its partition already.

    First loads are serialised among themselves (an advisory lock until COMMIT): attaching
    validates keys on the parties and certificates, which two first loads writing both
    would otherwise deadlock on."""
    missing = conn.execute(text("""
        SELECT coalesce(array_agg(DISTINCT s.district_code), '{}') FROM stage_parcel s
         WHERE NOT EXISTS (SELECT 1 FROM cadastre.partition_district p
                            WHERE p.district_code = s.district_code)
    """)).scalar_one()
    if not missing:
        return []
    advisory_lock(conn, "partitions", ["first load"])
    return [Built(suffix, tuple(districts)) for suffix, districts in conn.execute(text(
        "SELECT suffix, members FROM cadastre.build_partitions(CAST(:d AS text[]))"),
        {"d": list(missing)})]


def only_new(conn: Connection, built: list[Built]) -> bool:
    """Whether the whole delivery lies in the districts built apart and names no current
    parcel as its parcels' parent (which the merge would link and retire): then it is all
    new parcels and merges by the first-load path alone."""
    districts = [d for b in built for d in b.districts]
    return conn.execute(text("""
        SELECT NOT EXISTS (SELECT 1 FROM stage_parcel
                            WHERE district_code <> ALL(CAST(:d AS text[])))
           AND NOT EXISTS (SELECT 1 FROM stage_parent sp JOIN cadastre.parcel p
                             ON p.commune_code = sp.commune_code
                            AND p.sheet_no = sp.sheet_no AND p.parcel_no = sp.parcel_no
                            AND p.status = 'current')
    """), {"d": districts}).scalar_one()


def attach(conn: Connection, built: list[Built]) -> None:
    """Attach what ``build`` made (its rows, if any, already written): the indexes are
    built and the keys validated now, set-wise."""
    for b in built:
        conn.execute(text("SELECT cadastre.attach_partitions(:s, CAST(:d AS text[]))"),
                     {"s": b.suffix, "d": list(b.districts)})
