"""The served app: the platform built for this project's domains, with the planner's map
(a page of the composition root, since it draws every domain's collections)."""

from __future__ import annotations

from fastapi import FastAPI

from landplatform.app import build_app
from landplatform.settings import Settings
from lis import DOMAINS
from lis.web import map_router


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(DOMAINS, settings, extra_routers=[map_router],
                     pages=[("Bản đồ quy hoạch / Planner's map", "/map")])
