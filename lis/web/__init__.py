"""The planner's map: a browser page over the platform's own OGC APIs and vector tiles.

Served by the platform itself (no CDN, no tile service of anyone else): MapLibre GL JS is
vendored from npm into ``landplatform/publish/static/vendor`` by
``scripts/vendor_pages.py`` and committed, so neither users nor CI need npm;
``static/style.js`` builds the map's style from what the platform publishes, for this
page and for pages on other origins that embed the platform's tiles.
"""

from lis.web.routes import router as map_router

__all__ = ["map_router"]
