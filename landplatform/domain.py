"""The one contract through which a domain plugs into the platform.

The platform (this package) knows no domain: it serves whatever layers, collections,
routes, commands and migrations the composition root (``lis``) hands it as a list of
``Domain`` records. A domain never registers itself by a name the platform recognises;
what the platform must know about a layer is declared on the layer
(``landplatform.publish.layers.Layer``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy.engine import Engine

from landplatform.settings import Settings

if TYPE_CHECKING:  # the HTTP stack is imported by what serves, not by every command
    from fastapi import APIRouter

    from landplatform.auth.tokens import TokenVerifier
    from landplatform.publish.resources import Publisher, Units

Echo = Callable[..., None]  # click.echo's shape: echo(message, err=False)


@dataclass(frozen=True)
class Services:
    """What the platform hands a domain's router factory: the settings, the read/write
    engine (writes, restricted reads), the public read-only engine, the token verifier and
    every domain's contributions to extension points (``Domain.extensions``)."""

    settings: Settings
    engine: Engine
    public_engine: Engine
    verifier: TokenVerifier
    extensions: Mapping[str, tuple[object, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Domain:
    """A domain as the platform sees it.

    - ``migrations``: its alembic versions folder (one branch of the history).
    - ``publisher``: adds its collections/processes/coverages to the pygeoapi config.
    - ``units``: the publishing units, for the one domain that keeps them: one dict per
      district with ``district_code``, ``district_name``, ``province_name``, ``tm3_epsg``
      and its extent (``min_lon`` ... ``max_lat``), handed to every publisher.
    - ``routers``: its HTTP routes, built from the platform's services.
    - ``upload_paths``: path patterns that take uploads (the larger body limit).
    - ``commands``: its ``lis`` commands and groups; ``load_commands`` go under ``lis load``.
    - ``load_samples``: loads its part of ``data/samples`` (called in the list's order).
    - ``after_samples``: derived data ``lis up`` brings current after the samples (e.g.
      valuation runs).
    - ``generate_samples``: writes its part of the samples folder (``lis samples
      generate``): ``f(folder, seed, scale) -> exit code``; ``scale`` (a benchmark file of
      that many parcels instead of the samples) is for the domains that make one.
    - ``extensions``: contributions to another domain's extension points, by the point's
      name (the domain that declares a point documents its contract); the platform only
      gathers them (``extensions``) and hands them on.
    """

    name: str
    migrations: Path | None = None
    publisher: Publisher | None = None
    units: Units | None = None
    routers: Callable[[Services], Sequence[APIRouter]] | None = None
    upload_paths: tuple[str, ...] = ()
    commands: tuple[click.Command, ...] = ()
    load_commands: tuple[click.Command, ...] = ()
    load_samples: Callable[[Engine, Path, Echo], bool] | None = None
    after_samples: Callable[[Engine, Settings, Echo], bool] | None = None
    generate_samples: Callable[[Path, int, int | None], int] | None = None
    extensions: Mapping[str, Sequence[object]] = field(default_factory=dict)


def deferred(target: str) -> Callable[..., Any]:
    """``"package.module:name"`` as a callable that imports the module on its first call.

    A domain names its routers, publisher and contributions this way so that building the
    command line imports no HTTP stack: ``lis load`` reads its first byte without paying
    for pygeoapi and FastAPI (the re-delivery of a district is measured in seconds, and
    those imports were a third of them).
    """
    module, _, name = target.partition(":")
    if not module or not name:
        raise ValueError(f"deferred target must be 'module:name', not {target!r}")

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__module__ = module
    call.__doc__ = f"{target}, imported on its first call (landplatform.domain.deferred)."
    return call


def extensions(domains: Sequence[Domain]) -> dict[str, tuple[object, ...]]:
    """Every domain's contributions, by extension point, in the domains' order."""
    gathered: dict[str, list[object]] = {}
    for domain in domains:
        for point, items in domain.extensions.items():
            gathered.setdefault(point, []).extend(items)
    return {point: tuple(items) for point, items in gathered.items()}


def migration_locations(domains: Sequence[Domain]) -> list[Path]:
    return [d.migrations for d in domains if d.migrations is not None]


def publishing_units(domains: Sequence[Domain]) -> Units | None:
    """The units of the first domain that keeps them (the cadastre, in practice)."""
    return next((d.units for d in domains if d.units is not None), None)
