"""``lis``: the command line for this project's domains (see ``landplatform.cli``)."""

from __future__ import annotations

from etl.commands import runs
from landplatform.cli import build_cli
from landplatform.domain import deferred
from lis import DOMAINS

# the app (pygeoapi, FastAPI) is imported only by the commands that serve
main = build_cli(DOMAINS, deferred("lis.app:create_app"))
main.add_command(runs)

if __name__ == "__main__":
    main()
