"""Valuation as the platform sees it (``landplatform.domain.Domain``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from cadastre.extensions import PARCEL_PRICES
from landplatform.domain import Domain, Services, deferred
from valuation.cli import load_parcel_sites_cmd, load_prices_cmd, valuate, value_after_samples
from valuation.loader import load_sample_prices
from valuation.sites import load_sample_sites

if TYPE_CHECKING:
    from fastapi import APIRouter

HERE = Path(__file__).resolve().parent


def load_samples(engine: Engine, samples_dir: Path, echo: Callable[..., None]) -> bool:
    """The sample price tables, then the parcels' recorded alley widths."""
    return (load_sample_prices(engine, samples_dir / "prices", echo)
            and load_sample_sites(engine, samples_dir / "prices", echo))


def generate_samples(folder: Path, seed: int, scale: int | None) -> int:
    """The sample price tables, segments and value zones (none for a benchmark file)."""
    if scale:
        return 0
    from valuation import samplegen

    return samplegen.main(["--out", str(folder / "prices"), "--samples", str(folder)])


def routers(services: Services) -> list[APIRouter]:
    from valuation.routes import router

    return [router]  # price-surface PNG previews for the map


DOMAIN = Domain(
    name="valuation",
    migrations=HERE / "migrations",
    publisher=deferred("valuation.publish:publisher"),
    routers=routers,
    commands=(valuate,),
    load_commands=(load_prices_cmd, load_parcel_sites_cmd),
    load_samples=load_samples,
    after_samples=value_after_samples,
    generate_samples=generate_samples,
    extensions={PARCEL_PRICES: (deferred("valuation.dossier_prices:parcel_prices"),)},
)
