"""The composition root: the list of domains, and the app and the CLI assembled from it.

The only package that knows every domain. The platform layer (``landplatform``) serves
what it is handed; the domains plug in through ``landplatform.domain.Domain``. The order
matters where one domain's samples refer to another's: boundaries before the parcels that
are checked against them, parcels before plans and prices.
"""

from __future__ import annotations

from boundaries.domain import DOMAIN as BOUNDARIES
from cadastre.domain import DOMAIN as CADASTRE
from landplatform.domain import Domain, migration_locations
from planning.domain import DOMAIN as PLANNING
from valuation.domain import DOMAIN as VALUATION

DOMAINS: tuple[Domain, ...] = (BOUNDARIES, CADASTRE, PLANNING, VALUATION)
MIGRATIONS = migration_locations(DOMAINS)  # every domain's branch, for alembic
