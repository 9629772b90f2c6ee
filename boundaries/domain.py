"""Administrative boundaries as the platform sees it (``landplatform.domain.Domain``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine

from boundaries.cli import load_boundaries_cmd
from boundaries.loader import load_sample_boundaries
from landplatform.domain import Domain

HERE = Path(__file__).resolve().parent
SAMPLES = "boundaries"  # the folder of data/samples the sample boundaries live in


def load_samples(engine: Engine, samples_dir: Path, echo: Callable[..., None]) -> bool:
    return load_sample_boundaries(engine, samples_dir / SAMPLES, echo)


def generate_samples(folder: Path, seed: int, scale: int | None) -> int:
    """The communes of the sample districts, from the sample parcels' own grid (none for
    a benchmark file)."""
    if scale:
        return 0
    from boundaries import samplegen

    return samplegen.main(["--out", str(folder / SAMPLES), "--seed", str(seed)])


DOMAIN = Domain(
    name="boundaries",
    migrations=HERE / "migrations",
    load_commands=(load_boundaries_cmd,),
    load_samples=load_samples,
    generate_samples=generate_samples,
)
