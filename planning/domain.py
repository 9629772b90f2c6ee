"""Planning as the platform sees it (``landplatform.domain.Domain``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine

from cadastre.extensions import CHANGE_OF_USE_RULES
from landplatform.domain import Domain, deferred
from planning.cli import load_plan_cmd, planning
from planning.loader import load_sample_plans

HERE = Path(__file__).resolve().parent


def load_samples(engine: Engine, samples_dir: Path, echo: Callable[..., None]) -> bool:
    return load_sample_plans(engine, samples_dir / "plans", echo)


def generate_samples(folder: Path, seed: int, scale: int | None) -> int:
    """The sample plans, over the sample parcels (none for a benchmark file)."""
    if scale:
        return 0
    from planning import samplegen

    return samplegen.main(["--out", str(folder / "plans"), "--seed", str(seed),
                           "--samples", str(folder)])


DOMAIN = Domain(
    name="planning",
    migrations=HERE / "migrations",
    publisher=deferred("planning.publish:publisher"),
    commands=(planning,),
    load_commands=(load_plan_cmd,),
    load_samples=load_samples,
    generate_samples=generate_samples,
    extensions={CHANGE_OF_USE_RULES: (deferred("planning.dossier_rules:plan_agrees"),)},
)
