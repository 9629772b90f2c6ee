"""The shape of the code, as tests: where things live and which way the imports point.

The package arrows themselves (root -> domains -> etl -> kernel; planning and valuation
independent) are import-linter contracts in pyproject.toml, run by ``make test`` (and so
by CI) and here. These tests check what import-linter cannot: private names, domain
names inside the platform and the ETL, and the migration history's ids.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

from landplatform.migrate import BASELINE, revisions
from lis import DOMAINS, MIGRATIONS

PROJECT = Path(__file__).resolve().parent.parent
PACKAGES = ("landplatform", "etl", "boundaries", "cadastre", "planning", "valuation", "lis",
            "bench")
# The history as today's databases carry it: id -> parent(s). Moving a revision to its
# domain's folder must not change it, so an existing database upgrades with nothing to do.
REVISIONS = {"0001": None, "0002": "0001", "0003": "0002", "0004": "0003",
             "0005": "0003", "0006": "0003", "0007": "0006", "0008": "0003",
             "0009": "0008",  # new since the move: the cadastre's memory
             "0010": "0007",  # new since the move: the client's request id in the audit
             "0011": "0003",  # new: the boundaries' versions (their own branch)
             "0012": "0009",  # dossiers (registered land changes)
             "0013": "0010",  # the audit's 'register' action
             "0014": "0013",  # ANALYZE for the application role
             "0015": "0014",  # ACCENTI: unaccent
             "0016": "0012",  # the parcels' low-zoom summary (cadastre)
             "0017": "0016",  # the 2025 units: current_commune_source, sheet crosswalk
             "0019": "0005",  # price sheets as provinces write them, positions by width
             "0020": "0017",  # the cadastre's large tables partitioned by district
             "0021": "0020",  # parties keyed by document and kind (households)
             "0022": "0015",  # no JIT in the platform's database
             "0023": "0021",  # the low-zoom summary redraws only moved shapes
             "0024": "0023"}  # a province's partitions made by its first load


def sources(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (PROJECT / pkg).rglob("*.py")
                  if "tests" not in p.relative_to(PROJECT).parts)


def strings(tree: ast.AST) -> list[ast.Constant]:
    """String literals that are not docstrings."""
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                          | ast.AsyncFunctionDef)
            and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)}
    return [n for n in ast.walk(tree) if isinstance(n, ast.Constant)
            and isinstance(n.value, str) and id(n) not in docs]


def test_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is not installed (pip install -e '.[test]')"
    out = subprocess.run([lint, "--no-cache"], cwd=PROJECT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "2 kept, 0 broken" in out.stdout


def test_no_module_imports_another_modules_private_names() -> None:
    found = []
    for path in sources(*PACKAGES):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = set()  # names bound to first-party modules in this file
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module \
                    and node.module.split(".")[0] in PACKAGES:
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{path.relative_to(PROJECT)}: from {node.module} "
                                     f"import {alias.name}")
                    modules.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                modules |= {(a.asname or a.name).split(".")[0] for a in node.names
                            if a.name.split(".")[0] in PACKAGES}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in modules and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                found.append(f"{path.relative_to(PROJECT)}:{node.lineno}: "
                             f"{node.value.id}.{node.attr}")
    assert not found, found


def test_etl_names_no_domain_table() -> None:
    """The ETL's SQL reads and writes only its own ledger (``etl.*``): a loader's tables
    are its domain's."""
    domain_table = re.compile(r"\b(cadastre|planning|valuation|restricted|publish|audit|"
                              r"admin)"
                              r"\.[a-z_]+\b")
    found = [f"{p.relative_to(PROJECT)}: {m.group(0)}" for p in sources("etl")
             for node in strings(ast.parse(p.read_text(encoding="utf-8")))
             for m in domain_table.finditer(node.value)]
    assert not found, found


def test_platform_recognises_no_domain_by_name() -> None:
    """No collection id or layer key of a domain appears in the platform's code: what it
    must know about a layer is declared on the layer."""
    from cadastre.layers import LAND_USE_TYPES, PARCELS
    from planning.publish import PLANNING_ZONES, PLANS
    from valuation.publish import LAND_PRICES, PARCEL_VALUES

    keys = {layer.key for layer in (PARCELS, LAND_USE_TYPES, PLANNING_ZONES, PLANS,
                                    LAND_PRICES, PARCEL_VALUES)} | {"price-surface"}
    pattern = re.compile(r"^(" + "|".join(map(re.escape, sorted(keys))) + r")(\b|-)")
    found = [f"{p.relative_to(PROJECT)}:{node.lineno}: {node.value!r}"
             for p in sources("landplatform")
             for node in strings(ast.parse(p.read_text(encoding="utf-8")))
             if pattern.match(node.value)]
    assert not found, found


def test_every_domain_owns_its_folder() -> None:
    for domain in DOMAINS:
        folder = PROJECT / domain.name
        assert domain.migrations is not None and domain.migrations.parent == folder
        assert list((folder / "mappings").glob("*.yaml")), f"{domain.name} has no mappings"
        assert list((folder / "tests").glob("test_*.py")), f"{domain.name} has no tests"


def test_revision_ids_are_unchanged_by_the_move() -> None:
    found = revisions(MIGRATIONS)
    assert {rev: parent for rev, (parent, _) in found.items()} == REVISIONS
    owners = {rev: path.parent for rev, (_, path) in found.items()}
    cadastre = {owners[rev] for rev in ("0008", "0009", "0012", "0016", "0017", "0020",
                                        "0021")}
    assert cadastre == {PROJECT / "cadastre" / "migrations"}
    assert owners["0004"] == PROJECT / "planning" / "migrations"
    assert owners["0005"] == owners["0019"] == PROJECT / "valuation" / "migrations"
    assert owners["0011"] == PROJECT / "boundaries" / "migrations"
    assert {owners[r] for r in ("0001", "0002", "0003", "0006", "0007", "0010", "0013",
                                "0014", "0015")} == {BASELINE}


def test_every_domains_tests_run_in_the_suite() -> None:
    """A domain's tests/ that pytest's testpaths leave out never run in CI (the boundaries'
    did not, at first)."""
    import tomllib

    config = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))
    paths = set(config["tool"]["pytest"]["ini_options"]["testpaths"])
    for domain in DOMAINS:
        if (PROJECT / domain.name / "tests").is_dir():
            assert f"{domain.name}/tests" in paths, domain.name
    assert "tests" in paths


def test_the_command_line_imports_no_http_stack() -> None:
    """``lis load`` must not pay for pygeoapi and FastAPI before it reads a byte: the
    domains name their routers and publishers through ``landplatform.domain.deferred``,
    and the served app is built only by the commands that serve."""
    heavy = ("pygeoapi", "fastapi", "starlette", "uvicorn", "jinja2", "rasterio")
    code = ("import sys, lis.cli; "
            f"print(' '.join(m for m in {heavy!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=PROJECT, check=True)
    assert done.stdout.split() == [], f"lis.cli imports {done.stdout.strip()}"


def test_deferred_names_its_target_and_calls_it() -> None:
    """A deferred callable keeps its target's module and name (uvicorn's worker factory is
    built from them) and calls the real function."""
    from landplatform.domain import deferred

    join = deferred("os.path:join")
    assert (join.__module__, join.__qualname__) == ("os.path", "join")
    assert join("a", "b") == str(Path("a") / "b")
    try:
        deferred("no_colon")
    except ValueError as exc:
        assert "module:name" in str(exc)
    else:
        raise AssertionError("a target without ':' was accepted")
