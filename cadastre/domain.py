"""The cadastre as the platform sees it (``landplatform.domain.Domain``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine

from cadastre.cli import (
    dossier,
    load_parcels_cmd,
    load_sheet_crosswalk_cmd,
    load_split_rules_cmd,
    parcel,
)
from cadastre.loader import load_sample_parcels
from cadastre.rules import LOAD_PATHS
from cadastre.sheet_crosswalk import load_sample_sheet_crosswalk
from cadastre.split_rules import load_sample_split_rules
from landplatform.domain import Domain, deferred

HERE = Path(__file__).resolve().parent


def load_samples(engine: Engine, samples_dir: Path, echo: Callable[..., None]) -> bool:
    """The sample parcels, then the sample provinces' minimum split areas and the sample
    map sheet crosswalk."""
    return (load_sample_parcels(engine, samples_dir, echo)
            and load_sample_split_rules(engine, samples_dir, echo)
            and load_sample_sheet_crosswalk(engine, samples_dir, echo))


def generate_samples(folder: Path, seed: int, scale: int | None) -> int:
    """The sample parcel files (or, with ``scale``, one benchmark GeoPackage)."""
    from cadastre import samplegen

    return samplegen.main(["--out", str(folder), "--seed", str(seed),
                           *(["--scale", str(scale)] if scale else [])])


DOMAIN = Domain(
    name="cadastre",
    migrations=HERE / "migrations",
    publisher=deferred("cadastre.publish:publisher"),
    units=deferred("cadastre.publish:published_districts"),
    routers=deferred("cadastre.routes:routers"),
    upload_paths=(LOAD_PATHS,),
    commands=(parcel, dossier),
    load_commands=(load_parcels_cmd, load_split_rules_cmd, load_sheet_crosswalk_cmd),
    load_samples=load_samples,
    generate_samples=generate_samples,
)
