"""The cadastre as the platform sees it (``landplatform.domain.Domain``)."""

from __future__ import annotations

from pathlib import Path

from cadastre.cli import load_parcels_cmd, parcel
from cadastre.loader import load_sample_parcels
from cadastre.publish import published_districts, publisher
from cadastre.routes import routers
from cadastre.uploads import LOAD_PATHS
from landplatform.domain import Domain

HERE = Path(__file__).resolve().parent


def generate_samples(folder: Path, seed: int, scale: int | None) -> int:
    """The sample parcel files (or, with ``scale``, one benchmark GeoPackage)."""
    from cadastre import samplegen

    return samplegen.main(["--out", str(folder), "--seed", str(seed),
                           *(["--scale", str(scale)] if scale else [])])


DOMAIN = Domain(
    name="cadastre",
    migrations=HERE / "migrations",
    publisher=publisher,
    units=published_districts,
    routers=routers,
    upload_paths=(LOAD_PATHS,),
    commands=(parcel,),
    load_commands=(load_parcels_cmd,),
    load_samples=load_sample_parcels,
    generate_samples=generate_samples,
)
