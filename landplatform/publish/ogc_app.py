"""pygeoapi's Starlette application, configured from our generated config.

pygeoapi reads its config and OpenAPI document from files named by environment
variables when ``pygeoapi.starlette_app`` is first imported, and its route handlers read
the module's ``api_`` object on every call. We write the files under
``var_dir/pygeoapi``, import the module, and set its config, OpenAPI document and API
object from memory (also on a second build in the same process, as tests do).
"""

from __future__ import annotations

import importlib
import json
import os
from collections import defaultdict
from pathlib import Path

import yaml
from starlette.applications import Starlette


def _twin_key(resource: dict) -> str | None:
    """Resources with equal keys differ only in id, title, description and filter values,
    so their OpenAPI paths differ only in those strings."""
    providers = resource.get("providers") or []
    if resource.get("type") != "collection" or len(providers) != 1:
        return None
    if not isinstance(providers[0].get("data"), dict):  # e.g. a coverage's file path
        return None
    p = providers[0]
    data = {k: v for k, v in p["data"].items() if k != "filter"}
    return json.dumps([p["name"], data, sorted(p["data"].get("filter") or {}),
                       p.get("crs")], sort_keys=True)


def openapi_document(config: dict) -> dict:
    """pygeoapi's OpenAPI document, generated once per kind of collection and copied for
    its twins: pygeoapi's generator costs ~30 ms a collection, ~20 s at 700 districts."""
    from pygeoapi.openapi import get_oas

    groups: dict[str, list[str]] = defaultdict(list)
    for rid, res in config["resources"].items():
        key = _twin_key(res)
        groups[key or rid].append(rid)
    twins = {rid: ids[0] for ids in groups.values() if len(ids) > 1 for rid in ids[1:]}
    reduced = {**config, "resources": {k: v for k, v in config["resources"].items()
                                       if k not in twins}}
    oas = get_oas(reduced)
    for rid, template in twins.items():
        src, dst = config["resources"][template], config["resources"][rid]
        swaps = [(template, rid), (template.capitalize(), rid.capitalize()),
                 (_escaped(src["title"]), _escaped(dst["title"])),
                 (_escaped(src["description"]), _escaped(dst["description"]))]
        prefix = f"/collections/{template}"
        for path in [p for p in oas["paths"] if p == prefix or p.startswith(prefix + "/")]:
            text = json.dumps(oas["paths"][path])
            for old, new in sorted(swaps, key=lambda s: -len(s[0])):
                text = text.replace(old, new)
            oas["paths"][f"/collections/{rid}{path[len(prefix):]}"] = json.loads(text)
        oas.setdefault("tags", []).append({"name": rid, "description": dst["description"]})
    return oas


def _escaped(text: str) -> str:
    return json.dumps(text)[1:-1]


def _write(path: Path, text: str) -> None:
    """Write by rename: every worker process of ``lis serve`` writes these files at start,
    and pygeoapi must never read one half-written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def build_ogc_app(config: dict, out_dir: Path) -> Starlette:
    from pygeoapi.api import API

    out_dir.mkdir(parents=True, exist_ok=True)
    # pygeoapi reads its config file with the pure-Python YAML loader at import (25 s for
    # 700 districts), but only needs the server section there: give it a bootstrap file
    # without resources, then the whole config in memory. The whole config is kept as
    # JSON beside it for people to read.
    bootstrap = out_dir / "pygeoapi-bootstrap.yml"
    _write(bootstrap, yaml.safe_dump({**config, "resources": {}}, allow_unicode=True,
                                     sort_keys=False))
    _write(out_dir / "pygeoapi-config.json",
           json.dumps(config, ensure_ascii=False, indent=1, default=str))
    openapi = openapi_document(config)
    openapi_path = out_dir / "openapi.json"
    _write(openapi_path, json.dumps(openapi))
    os.environ["PYGEOAPI_CONFIG"] = str(bootstrap)
    os.environ["PYGEOAPI_OPENAPI"] = str(openapi_path)

    module = importlib.import_module("pygeoapi.starlette_app")
    module.CONFIG = config
    module.OPENAPI = openapi
    module.api_ = API(config, openapi, module.ASYNCAPI)
    return module.APP
