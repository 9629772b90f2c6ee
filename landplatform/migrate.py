"""Apply the schema migrations (alembic) to the configured database.

Run from code rather than the alembic CLI so every entry point (``lis migrate``, ``lis up``,
the tests) migrates the same database the settings name, with no ini file to edit.

Each domain owns a branch of the history (cadastre core 0001-0003, then planning and
valuation branch off it), so migrations always go to ``heads``, all branch tips.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

_INI = Path(__file__).resolve().parent / "alembic.ini"


def _config() -> Config:
    return Config(str(_INI))


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Bring the schema to ``revision`` (default: every branch tip); no-op when there."""
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_heads(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def expected_heads() -> set[str]:
    return set(ScriptDirectory.from_config(_config()).get_heads())
