"""The container deployment (Dockerfile, docker-compose.yml), checked statically.

No Docker engine and no database: the files are parsed and held against the code they run
(settings, URL handling, CLI entry point, /health route), so a renamed setting, command or
route breaks here instead of in a deployment. ``docker compose config`` validates the file
too when the compose CLI is installed; that test is skipped otherwise.
"""

from __future__ import annotations

import ast
import fnmatch
import http.server
import importlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy.engine import make_url

from landplatform.db import normalise_url
from landplatform.settings import Settings

PROJECT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = PROJECT / "docker-compose.yml"
DOCKERFILE = PROJECT / "Dockerfile"
DOCKERIGNORE = PROJECT / ".dockerignore"

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}; $$ is a literal $.
_INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's variable substitution, with ``env`` standing for the shell/.env values."""
    env = env or {}

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        given = env.get(name)
        unset = not given if op in (":-", ":?") else given is None
        if not unset:
            return given
        if op and op.endswith("-"):
            return arg
        raise AssertionError(f"${{{name}}} has no default and is not set")

    return _INTERPOLATION.sub(sub, value)


def env_dict(service: dict) -> dict[str, str]:
    """A service's ``environment`` (mapping or list form), uninterpolated, values as str."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def volume_mounts(service: dict) -> list[tuple[str | None, str]]:
    """(source, target) of a service's volumes, short or long syntax."""
    mounts = []
    for vol in service.get("volumes") or []:
        if isinstance(vol, str):
            parts = vol.split(":")
            mounts.append((parts[0], parts[1]) if len(parts) > 1 else (None, parts[0]))
        else:
            mounts.append((vol.get("source"), vol["target"]))
    return mounts


def published_ports(service: dict) -> list[tuple[str | None, str, str]]:
    """(host_ip, published, target) of a service's ports, short or long syntax."""
    out = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            out.append((port.get("host_ip"), str(port.get("published", "")),
                        str(port["target"])))
            continue
        parts = str(port).split("/")[0].rsplit(":", 2)
        if len(parts) == 3:
            out.append((parts[0], parts[1], parts[2]))
        elif len(parts) == 2:
            out.append((None, parts[0], parts[1]))
        else:
            out.append((None, "", parts[0]))
    return out


def healthcheck_command(service: dict) -> list[str]:
    """A compose healthcheck ``test`` as an argv (CMD-SHELL/str become ``sh -c``)."""
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return ["sh", "-c", test]
    kind, *args = test
    if kind == "CMD-SHELL":
        return ["sh", "-c", " ".join(args)]
    assert kind == "CMD", f"healthcheck test starts with {kind!r}"
    return list(args)


def parse_dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    instructions, current = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):  # comment lines inside a continuation
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, args = current.strip().partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        current = ""
    return instructions


def runtime_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The instructions of the last stage (the image that runs)."""
    starts = [i for i, (kw, _) in enumerate(instructions) if kw == "FROM"]
    return instructions[starts[-1]:]


def dockerfile_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for kw, args in runtime_stage(instructions):
        if kw == "ENV":
            for token in shlex.split(args):
                name, _, value = token.partition("=")
                env[name] = value
    return env


def dockerignore_excludes(patterns: list[str], relpath: str) -> bool:
    """Whether .dockerignore leaves ``relpath`` out of the build context.

    Docker's rules closely enough for this repository: patterns in order, the last match
    wins, ``!`` re-includes, and a pattern matching a parent directory matches the files
    beneath it.
    """
    parts = relpath.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").strip("/")
        pats = [pat, pat[3:]] if pat.startswith("**/") else [pat]
        if any(fnmatch.fnmatchcase(c, p) for c in candidates for p in pats):
            excluded = not negate
    return excluded


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def db(compose: dict) -> dict:
    return compose["services"]["db"]


@pytest.fixture(scope="module")
def app(compose: dict) -> dict:
    return compose["services"]["app"]


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return parse_dockerfile(DOCKERFILE)


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- compose: structure


def test_compose_spec_without_version_key(compose: dict) -> None:
    assert "version" not in compose, "the Compose spec has no `version:`; it only warns"
    assert set(compose["services"]) >= {"db", "app"}


def test_db_is_postgis_15_or_newer(db: dict) -> None:
    m = re.fullmatch(r"postgis/postgis:(\d+)-(\d+)\.(\d+)(?:[-.\w]*)", db["image"])
    assert m, f"db image {db['image']!r} is not a versioned postgis/postgis tag"
    assert int(m.group(1)) >= 15


def test_db_healthcheck_is_pg_isready_for_the_app_database(db: dict) -> None:
    argv = healthcheck_command(db)
    line = " ".join(argv)
    assert "pg_isready" in line
    env = env_dict(db)
    assert re.search(rf"-U\s+{re.escape(env['POSTGRES_USER'])}\b", line)
    assert re.search(rf"-d\s+{re.escape(env['POSTGRES_DB'])}\b", line)
    assert set(db["healthcheck"]) >= {"interval", "timeout", "retries", "start_period"}


def test_db_data_on_a_declared_named_volume(compose: dict, db: dict) -> None:
    mounts = dict((target, source) for source, target in volume_mounts(db))
    source = mounts.get("/var/lib/postgresql/data")
    assert source, "PostgreSQL's data directory is not on a volume"
    assert not source.startswith((".", "/", "~")), f"{source} is a bind mount, not a volume"
    assert source in (compose.get("volumes") or {}), f"volume {source} not declared"


def test_db_not_published_by_default(db: dict) -> None:
    assert not db.get("ports"), "PostgreSQL should be reachable from the app network only"


def test_app_builds_from_repository_dockerfile(app: dict) -> None:
    build = app["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert context == "."
    assert (PROJECT / context / dockerfile).is_file()


def test_setup_waits_for_healthy_db_and_app_for_setup(compose: dict, app: dict) -> None:
    setup = compose["services"]["setup"]
    assert setup["depends_on"]["db"]["condition"] == "service_healthy", \
        "short depends_on form does not wait for health"
    assert app["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert setup["command"] == ["lis", "up", "--no-serve"]
    assert app["command"] == ["lis", "serve"]
    assert setup.get("restart") == "no"


def test_app_restarts_and_keeps_var_dir_on_named_volume(compose: dict, app: dict,
                                                        dockerfile: list) -> None:
    assert app.get("restart") == "unless-stopped"
    var_dir = {**dockerfile_env(dockerfile), **env_dict(app)}["LIS_VAR_DIR"]
    sources = {target: source for source, target in volume_mounts(app)}
    assert var_dir in sources, f"LIS_VAR_DIR {var_dir} is not on a volume"
    assert sources[var_dir] in (compose.get("volumes") or {})


# ---------------------------------------------------------------- compose: app <-> code


ROLE_URLS = {"DATABASE_URL": ("lis_app", "LIS_DB_APP_PASSWORD"),
             "LIS_OWNER_DATABASE_URL": ("lis_owner", "LIS_DB_OWNER_PASSWORD"),
             "LIS_PUBLIC_DATABASE_URL": ("lis_public", "LIS_DB_PUBLIC_PASSWORD")}


@pytest.mark.parametrize("shell_env", [{}, {"LIS_DB_APP_PASSWORD": "s3cret-app",
                                            "LIS_DB_OWNER_PASSWORD": "s3cret-owner",
                                            "LIS_DB_PUBLIC_PASSWORD": "s3cret-public"}],
                         ids=["defaults", "passwords-set"])
@pytest.mark.parametrize("service", ["setup", "app"])
def test_each_role_url_names_the_db_service_and_its_role(
        compose: dict, db: dict, service: str, shell_env: dict[str, str]) -> None:
    """Each URL logs in as its role, with the password the first-start script gives it."""
    db_env = {k: interpolate(v, shell_env) for k, v in env_dict(db).items()}
    env = env_dict(compose["services"][service])
    for name, (role, password_var) in ROLE_URLS.items():
        if name not in env:
            continue
        url = make_url(interpolate(env[name], shell_env))
        assert (url.host, url.port or 5432, url.database) == ("db", 5432,
                                                               db_env["POSTGRES_DB"])
        assert url.username == role
        assert url.password == db_env[password_var]
        if shell_env:
            assert url.password == shell_env[password_var]
        assert normalise_url(interpolate(env[name], shell_env)).drivername == \
            "postgresql+psycopg"


def test_the_server_holds_no_owner_or_superuser_password(compose: dict, db: dict,
                                                          app: dict) -> None:
    """The serving container can neither migrate nor be a superuser: those passwords are
    not in its environment (setup has the owner's, to migrate)."""
    env = env_dict(app)
    assert set(env) >= {"DATABASE_URL", "LIS_PUBLIC_DATABASE_URL"}
    assert "LIS_OWNER_DATABASE_URL" not in env
    secret_exprs = [env_dict(db)["POSTGRES_PASSWORD"], env_dict(db)["LIS_DB_OWNER_PASSWORD"]]
    for value in env.values():
        assert not any(expr in value for expr in secret_exprs), value
    assert "LIS_OWNER_DATABASE_URL" in env_dict(compose["services"]["setup"])


def test_passwords_from_variables_and_the_first_start_script_mounted(db: dict) -> None:
    env = env_dict(db)
    for var in ("POSTGRES_PASSWORD", "LIS_DB_OWNER_PASSWORD", "LIS_DB_APP_PASSWORD",
                "LIS_DB_PUBLIC_PASSWORD"):
        assert env[var].startswith("${"), f"{var} is hard-coded"
    mounts = {target: source for source, target in volume_mounts(db)}
    script = mounts["/docker-entrypoint-initdb.d/20-lis-roles.sh"]
    assert (PROJECT / script).is_file()
    assert os.access(PROJECT / script, os.X_OK)
    sql_path = mounts["/lis/roles.sql"]
    assert (PROJECT / sql_path).resolve() == (PROJECT / "landplatform/sql/roles.sql").resolve()
    text = (PROJECT / script).read_text()
    for var in ("LIS_DB_OWNER_PASSWORD", "LIS_DB_APP_PASSWORD", "LIS_DB_PUBLIC_PASSWORD"):
        assert var in text


def _settings_aliases() -> dict[str, str]:
    """Environment variable name (upper case) -> Settings field it fills."""
    aliases = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        prefix = Settings.model_config.get("env_prefix", "")
        aliases[(alias or f"{prefix}{name}").upper()] = name
    return aliases


def _platform_env(app: dict, dockerfile: list, setup: dict | None = None) -> dict[str, str]:
    env = {**dockerfile_env(dockerfile), **env_dict(setup or {}), **env_dict(app)}
    return {k: interpolate(v) for k, v in env.items()
            if k.startswith("LIS_") or k in ("DATABASE_URL", "HOST", "PORT")}


def test_every_platform_variable_is_read_by_settings(
        compose: dict, app: dict, dockerfile: list, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _platform_env(app, dockerfile, compose["services"]["setup"])
    aliases = _settings_aliases()
    unknown = sorted(set(env) - set(aliases))
    assert not unknown, f"set for the container but not read by Settings: {unknown}"
    for name in aliases:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    for name, value in env.items():
        got = getattr(settings, aliases[name])
        assert str(got) == value, f"{name}={value!r} arrived as {got!r}"


def test_samples_dir_points_at_the_copied_samples(app: dict, dockerfile: list) -> None:
    """A non-editable install puts the package in site-packages, so the default samples
    location (next to the package) does not exist in the image: it must be set to where
    the Dockerfile copies data/samples."""
    env = _platform_env(app, dockerfile)
    copies = [shlex.split(args) for kw, args in runtime_stage(dockerfile) if kw == "COPY"]
    targets = {c[-1].rstrip("/") for c in copies if c[0].rstrip("/") == "data/samples"}
    assert env.get("LIS_SAMPLES_DIR") in targets


def test_published_port_is_the_app_port(app: dict, dockerfile: list) -> None:
    port = interpolate(env_dict(app)["PORT"])
    ports = published_ports(app)
    assert ports, "the API is not published"
    for host_ip, _published, target in ports:
        assert target == port
        assert host_ip == "127.0.0.1", "published beyond loopback by default"
    exposed = [a.split("/")[0] for kw, a in runtime_stage(dockerfile) if kw == "EXPOSE"]
    assert port in " ".join(exposed).split()
    assert dockerfile_env(dockerfile)["PORT"] == port
    # The default public URL is the published port on the host.
    public = urlsplit(interpolate(env_dict(app)["LIS_PUBLIC_URL"]))
    assert str(public.port) in {published for _, published, _ in ports}


def test_app_listens_on_all_interfaces(app: dict, dockerfile: list) -> None:
    assert _platform_env(app, dockerfile)["HOST"] == "0.0.0.0"


# ---------------------------------------------------------------- Dockerfile


def test_dockerfile_base_and_user(dockerfile: list) -> None:
    stage = runtime_stage(dockerfile)
    assert stage[0][1].split()[0] == "python:3.12-slim"
    users = [args for kw, args in stage if kw == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "runs as root"


def test_cmd_runs_the_lis_entry_point(dockerfile: list, pyproject: dict) -> None:
    cmds = [args for kw, args in runtime_stage(dockerfile) if kw == "CMD"]
    assert cmds, "no CMD"
    argv = json.loads(cmds[-1])  # exec form: no shell in between, lis receives the signals
    scripts = pyproject["project"]["scripts"]
    assert argv[0] in scripts, f"{argv[0]} is not in [project.scripts]"
    module, _, attr = scripts[argv[0]].partition(":")
    group = getattr(importlib.import_module(module), attr)
    assert len(argv) > 1 and argv[1] in group.commands, f"`{' '.join(argv)}`: no such command"
    # The sub-command's own options parse (e.g. `lis up --no-samples`).
    group.commands[argv[1]].make_context(argv[1], list(argv[2:]))


def test_copied_paths_exist_and_reach_the_build_context(dockerfile: list) -> None:
    patterns = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    for kw, args in dockerfile:
        if kw not in ("COPY", "ADD"):
            continue
        tokens = shlex.split(args)
        if any(t.startswith("--from") for t in tokens):
            continue
        sources = [t for t in tokens if not t.startswith("--")][:-1]
        matched = []
        for src in sources:
            hits = sorted(PROJECT.glob(src.rstrip("/")))
            if not any(ch in src for ch in "*?["):
                assert hits, f"COPY {src}: not in the repository"
            matched += hits
        assert matched, f"COPY {args}: no source exists"
        for hit in matched:
            files = [hit] if hit.is_file() else [p for p in hit.rglob("*") if p.is_file()]
            for file in files:
                rel = file.relative_to(PROJECT).as_posix()
                if "__pycache__" in rel or rel.endswith(".pyc"):
                    continue
                assert not dockerignore_excludes(patterns, rel), \
                    f"{rel} is COPYed but .dockerignore leaves it out of the context"


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    for rel in (".venv/bin/python", "var/pg/PG_VERSION", ".git/HEAD", "tests/test_compose.py",
                "landplatform/__pycache__/app.cpython-312.pyc", ".env"):
        assert dockerignore_excludes(patterns, rel), rel
    assert not dockerignore_excludes(patterns, "data/samples/manifest.json")


def test_runtime_package_data_is_declared(pyproject: dict) -> None:
    """A non-editable install (the image's) only has the data files package-data names."""
    package_data = pyproject["tool"]["setuptools"]["package-data"]
    needed = [PROJECT / "landplatform" / "alembic.ini",
              *(PROJECT / "landplatform" / "migrations").rglob("*.py"),
              *(PROJECT / "landplatform" / "reference").glob("*.csv"),
              *(p for domain in ("cadastre", "planning", "valuation")
                for p in [*(PROJECT / domain / "mappings").glob("*.yaml"),
                          *(PROJECT / domain / "migrations").glob("*.py")]),
              *(p for p in (PROJECT / "lis" / "web" / "static").rglob("*") if p.is_file())]
    for path in needed:
        package, _, inner = path.relative_to(PROJECT).as_posix().partition("/")
        if "__pycache__" in inner:
            continue
        assert any(fnmatch.fnmatchcase(inner, p) for p in package_data.get(package, [])), \
            f"{package}/{inner} is not in [tool.setuptools.package-data]"


# ---------------------------------------------------------------- health checks


def _health_routes() -> set[str]:
    """Paths of the GET routes landplatform.app declares (read from the source: building
    the app needs a database)."""
    import landplatform.app

    tree = ast.parse(Path(landplatform.app.__file__).read_text(encoding="utf-8"))
    paths = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "get" and node.args \
                and isinstance(node.args[0], ast.Constant):
            paths.add(node.args[0].value)
    return paths


def _dockerfile_healthcheck(dockerfile: list) -> str:
    checks = [args for kw, args in runtime_stage(dockerfile) if kw == "HEALTHCHECK"]
    assert checks, "no HEALTHCHECK"
    m = re.search(r"\bCMD\s+(.*)$", checks[-1])
    assert m
    return m.group(1)


def test_healthchecks_target_the_health_route(app: dict, dockerfile: list) -> None:
    routes = _health_routes()
    for check in (_dockerfile_healthcheck(dockerfile), " ".join(healthcheck_command(app))):
        m = re.search(r"https?://(127\.0\.0\.1|localhost):[^/'\"]+(/[\w/-]*)", check)
        assert m, f"no local URL in {check!r}"
        assert m.group(2) == "/health"
        assert "PORT" in check, "the check should follow $PORT, not a fixed port"
    assert "/health" in routes


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _run_check(argv: list[str], port: int) -> int:
    argv = [sys.executable if a == "python" else a for a in argv]
    env = {"PORT": str(port), "PATH": "/usr/bin:/bin"}
    return subprocess.run(argv, env=env, capture_output=True, timeout=30).returncode


def test_healthcheck_commands_follow_the_health_status(
        app: dict, dockerfile: list, health_server: http.server.HTTPServer) -> None:
    """Run both checks (python in place of the image's) against a stand-in /health."""
    shell = _dockerfile_healthcheck(dockerfile)
    python = shlex.quote(sys.executable)
    commands = {"Dockerfile": ["sh", "-c", re.sub(r"^python\b", python, shell)],
                "compose": healthcheck_command(app)}
    port = health_server.server_address[1]
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    for name, argv in commands.items():
        _Health.status = 200
        assert _run_check(argv, port) == 0, f"{name} check fails on 200"
        _Health.status = 503
        assert _run_check(argv, port) != 0, f"{name} check passes on 503"
        assert _run_check(argv, closed) != 0, f"{name} check passes with nothing listening"


# ---------------------------------------------------------------- docker compose


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        try:
            ok = subprocess.run([docker, "compose", "version"], capture_output=True,
                                timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return [docker, "compose"]
    return None


def test_docker_compose_config_accepts_the_file() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("docker compose CLI not installed")
    result = subprocess.run([*cli, "-f", str(COMPOSE_FILE), "config", "--quiet"],
                            cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
