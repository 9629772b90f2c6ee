"""The planner's map: a browser page over the platform's own OGC APIs.

Served by the platform itself (no CDN, no tile service): Leaflet is vendored under
``static/vendor`` by ``scripts/vendor-web.sh`` and committed, so neither users nor CI need npm.
"""

from lis.web.routes import router as map_router

__all__ = ["map_router"]
