"""Apply the schema migrations (alembic) to the configured database.

Run from code rather than the alembic CLI so every entry point (``lis migrate``, ``lis up``,
the tests) migrates the same database the settings name, with no ini file to edit.

The history has one branch per owner: the shared baseline (0001-0003: admin units, the
cadastre's core tables, the load ledger, the publish views) and the audit branch live
here; each domain keeps its own branch in its own folder (``Domain.migrations``), handed
in by the composition root as alembic ``version_locations``. Revision ids never change when
a revision moves folder, so an existing database upgrades with nothing to do. Migrations
always go to ``heads``, all branch tips, and end by granting the server's roles their
rights on what now exists (``landplatform.roles.grant``), in the same transaction.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from landplatform.roles import grant

_INI = Path(__file__).resolve().parent / "alembic.ini"
BASELINE = Path(__file__).resolve().parent / "migrations" / "versions"


def sibling_migration(here: str, filename: str) -> ModuleType:
    """The migration ``filename`` beside the migration file ``here`` (its ``__file__``), as
    a module: migration folders are not packages, and a later migration may build on an
    earlier one's SQL pieces or helpers."""
    path = Path(here).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"migration_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config(locations: Sequence[Path] = ()) -> Config:
    cfg = Config(str(_INI))
    folders = [BASELINE, *(Path(p).resolve() for p in locations)]
    cfg.set_main_option("path_separator", "os")  # os.pathsep between folders
    cfg.set_main_option("version_locations", os.pathsep.join(str(p) for p in folders))
    return cfg


def upgrade(engine: Engine, locations: Sequence[Path], revision: str = "heads") -> None:
    """Bring the schema to ``revision`` (default: every branch tip); no-op when there.
    ``locations``: every domain's migrations folder (the baseline is always included).
    ``engine`` logs in as the schema owner (or, without the roles, the one user)."""
    cfg = _config(locations)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        grant(conn)


def current_heads(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def expected_heads(locations: Sequence[Path]) -> set[str]:
    return set(ScriptDirectory.from_config(_config(locations)).get_heads())


def revisions(locations: Sequence[Path]) -> dict[str, tuple[str | None, Path]]:
    """Every revision: id -> (its parent(s) as alembic writes them, its file)."""
    script = ScriptDirectory.from_config(_config(locations))
    return {r.revision: (r.down_revision, Path(r.path)) for r in script.walk_revisions()}


def downgrade(engine: Engine, locations: Sequence[Path], revision: str) -> None:
    """Take the schema back to ``revision`` (e.g. a branch's earlier revision), as the
    owner; for the tests of a migration's way back and for an operator undoing one."""
    cfg = _config(locations)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
        grant(conn)
