"""A third-party OGC API - Features Part 1 checker (``ogctests`` from PyPI) against the server.

It runs in its own venv (``.venv-ogctests``, made by ``make test``), through
``scripts/ogc_checker.py``. Every check must pass except the ones listed in ``CANNOT``,
each with the reason it cannot pass here and the text its failure must show: a check
failing for any other reason fails this test. Why each is listed is in
docs/ARCHITECTURE.md ("Real clients").
"""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from support import PROJECT

CHECKER_PY = PROJECT / ".venv-ogctests" / "bin" / "python"

# check -> (why it cannot pass here, text its failure shows)
CANNOT = {
    "test_ast18": ("resolves the OpenAPI document's $refs to schemas.opengis.net: no internet",
                   "ConnectError"),
    "test_ast22": ("null geometry of unlocated features (code lists, units without a "
                   "delivered boundary) is valid GeoJSON (RFC 7946 3.2); the checker's "
                   "schema drops OGC's `nullable`", "None is not valid under any of the given"),
    "test_ast28": ("the same, for one feature", "None is not valid under any of the given"),
}


def test_ogc_checker_part1_core(api: str, tmp_path: Path) -> None:
    if not CHECKER_PY.exists():
        if os.environ.get("CI"):
            pytest.fail(".venv-ogctests is missing: scripts/bootstrap.sh --tests makes it")
        pytest.skip(".venv-ogctests not made (run `make test`, which installs ogctests)")
    report = tmp_path / "ogctests.xml"
    proc = subprocess.run([str(CHECKER_PY), str(PROJECT / "scripts" / "ogc_checker.py"), api,
                           str(report)], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert report.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    cases = list(ET.parse(report).iter("testcase"))
    assert len(cases) >= 25, f"the checker ran only {len(cases)} checks"
    unexpected, listed = [], []
    for case in cases:
        name = case.get("name", "")
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is None:
            continue
        text = (bad.get("message") or "") + (bad.text or "")
        if name in CANNOT and CANNOT[name][1] in text:
            listed.append(name)
        else:
            unexpected.append(f"{name}: {text[:400]}")
    assert not unexpected, "\n".join(unexpected)
    passed = len(cases) - len(listed)
    assert passed >= len(cases) - len(CANNOT)
