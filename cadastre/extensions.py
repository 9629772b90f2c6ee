"""What other domains may contribute to the cadastre's dossiers, without the cadastre
importing them.

A change of land-use purpose must agree with the approved plan (planning's rule) and its
answer states the fee basis from the land price table (valuation's figure). The cadastre
declares the two extension points here; a domain contributes a function under the point's
name in its ``Domain.extensions``, and the composition root hands every contribution to
the cadastre (``Services.extensions``). Contributions run inside the dossier's own
transaction, on its connection, so they see the change being registered and cannot
outlive it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.engine import Connection

#: ``(conn, UseChange) -> list[Finding]``: a refusal in a finding refuses the dossier.
CHANGE_OF_USE_RULES = "cadastre.change_of_use.rules"
#: ``(conn, district_code, parcel_uid, on_date) -> Prices | None``: the parcel's parts
#: priced as the parcel stands in the transaction (None: nothing prices it).
PARCEL_PRICES = "cadastre.parcel.prices"


@dataclass(frozen=True)
class UseChange:
    """A change of land-use purpose as filed: one part of a parcel to a new code."""

    district_code: str
    parcel_uid: int
    old_use: str
    new_use: str
    area_m2: float
    on_date: date


@dataclass(frozen=True)
class Finding:
    """What a contributed rule found: ``refusal`` set means the dossier is refused."""

    source: str
    rule: str
    refusal: str | None = None
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PartPrice:
    code: str
    area_m2: float | None
    unit_price: float | None
    value: float | None
    reason: str | None = None


@dataclass(frozen=True)
class Prices:
    source: str  # e.g. the price table's code and version
    parts: list[PartPrice]


ChangeOfUseRule = Callable[[Connection, UseChange], list[Finding]]
ParcelPrices = Callable[[Connection, str, int, date], Prices | None]


def contributed(extensions: Mapping[str, Sequence[object]], point: str) -> list:
    """The contributions under ``point`` (none is a valid answer: no domain contributes)."""
    return list(extensions.get(point, ()))
