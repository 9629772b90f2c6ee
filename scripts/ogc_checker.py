"""Run the third-party OGC API - Features checker (``ogctests``, PyPI) against a server.

Run it with the checker's own venv (``.venv-ogctests``, made by ``scripts/bootstrap.sh
--tests``), not the project's: it pins its own pytest, geopandas and pyarrow.

    .venv-ogctests/bin/python scripts/ogc_checker.py http://127.0.0.1:8000 report.xml

One thing stands between the checker and a server that publishes coverages beside
features: it sends every collection listed in ``/collections`` to ``/items``, though a
coverage collection has no items (it says so by having no ``items`` link). The client
handed to the checker therefore shows it the feature collections only (those with an
``items`` link); every request and every other answer goes to the server unchanged.
The result is a JUnit XML report; ``tests/test_ogc_checker.py`` reads it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx


class FeatureCollectionsOnly(httpx.HTTPTransport):
    """Pass everything through; from ``/collections`` keep the collections with items."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path.rstrip("/") != "/collections" or response.status_code != 200:
            return response
        response.read()
        try:
            doc = json.loads(response.content)
        except ValueError:
            return response  # HTML or anything else: unchanged
        doc["collections"] = [c for c in doc.get("collections", [])
                              if any(lk.get("rel") == "items" for lk in c.get("links", []))]
        headers = {k: v for k, v in response.headers.items()
                   if k.lower() not in ("content-length", "content-encoding")}
        return httpx.Response(response.status_code, headers=headers,
                              content=json.dumps(doc).encode(), request=request)


def main(base_url: str, junit: str, scope: str) -> int:
    """One scope per process: the checker is a pytest suite run by ``pytest.main``."""
    import ogctests
    from ogctests.main import run_ogctests

    # The checker's venv may sit inside the project: keep pytest from taking the project's
    # pyproject.toml as its configuration and the project's conftest.py as its own.
    ini = Path(junit).with_name("ogctests-pytest.ini")
    ini.write_text("[pytest]\n", encoding="utf-8")
    client = httpx.Client(base_url=base_url, transport=FeatureCollectionsOnly(), timeout=60)
    return run_ogctests(scope, instance_url=base_url, test_client=client,
                        flags=["-q", "-p", "no:cacheprovider", "-c", str(ini),
                               f"--confcutdir={Path(ogctests.__file__).parent}",
                               f"--junitxml={junit}"])


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: ogc_checker.py BASE_URL REPORT.xml [SCOPE (default features/core)]")
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else "features/core"))
