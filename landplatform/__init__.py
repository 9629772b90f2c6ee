"""The platform layer: settings, database, migrations, publishing, the app and the CLI.

Named ``landplatform`` rather than ``platform`` so it cannot shadow the standard library's
``platform`` module, which SQLAlchemy, uvicorn and pytest import.
"""

__version__ = "0.1.0"
