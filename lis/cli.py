"""``lis``: the command line for this project's domains (see ``landplatform.cli``)."""

from __future__ import annotations

from etl.commands import runs
from landplatform.cli import build_cli
from lis import DOMAINS
from lis.app import create_app

main = build_cli(DOMAINS, create_app)
main.add_command(runs)

if __name__ == "__main__":
    main()
