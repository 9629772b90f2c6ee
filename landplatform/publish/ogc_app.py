"""pygeoapi's Starlette application, configured from our generated config.

pygeoapi reads its config and OpenAPI document from files named by environment
variables when ``pygeoapi.starlette_app`` is first imported. We write both under
``var_dir/pygeoapi`` from the generated config, then import it; a later build in the same
process (tests) swaps the module's API object, which its route handlers read per call.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

import yaml
from starlette.applications import Starlette


def build_ogc_app(config: dict, out_dir: Path) -> Starlette:
    from pygeoapi.api import API
    from pygeoapi.openapi import get_oas

    out_dir.mkdir(parents=True, exist_ok=True)
    config_path = out_dir / "pygeoapi-config.yml"
    openapi_path = out_dir / "openapi.json"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False),
                           encoding="utf-8")
    openapi = get_oas(config)
    openapi_path.write_text(json.dumps(openapi), encoding="utf-8")
    os.environ["PYGEOAPI_CONFIG"] = str(config_path)
    os.environ["PYGEOAPI_OPENAPI"] = str(openapi_path)

    name = "pygeoapi.starlette_app"
    if name in sys.modules:
        module = sys.modules[name]
        module.CONFIG = config
        module.OPENAPI = openapi
        module.api_ = API(config, openapi, module.ASYNCAPI)
    else:
        module = importlib.import_module(name)
    return module.APP
