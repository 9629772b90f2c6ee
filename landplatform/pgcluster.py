"""The platform's private ("embedded") PostgreSQL + PostGIS cluster.

When no ``DATABASE_URL`` is configured the platform runs its own cluster in a project folder
(``var/pg`` by default), so a developer needs nothing but the PostgreSQL and PostGIS packages:
no system service, no ``sudo -u postgres createuser``, no shared state with other projects.
Tests use the same class for throwaway clusters.

Layout of a cluster folder (``root``)::

    root/
      .lock              flock'ed while a process initialises/starts the cluster
      data/              PGDATA (initdb output)
      socket/            unix_socket_directories (TCP on 127.0.0.1 is what clients use)
      log/postgres.log   server log (pg_ctl -l)
      password           superuser password, mode 600, generated once with ``secrets``
      roles/<role>       password of each platform role (lis_owner, lis_app, lis_public),
                         mode 600, generated once; the roles are made on every start

PostgreSQL refuses to run as root. When this module runs as root it runs initdb/pg_ctl as an
unprivileged system account (``postgres`` or, if missing, ``lis-postgres``) and gives it the
folder. If that account cannot reach ``root`` (a project under ``/root`` with mode 700, say) we
do not loosen the permissions of the user's directories; the cluster is placed in
``/var/lib/landplatform/<sha1(root)[:12]>/`` instead and ``root/RELOCATED.txt`` records where.
Every property (``url``, ``password``, ``data_dir``...) follows that pointer transparently.

Command line: ``python -m landplatform.pgcluster {start,stop,status,url} --root var/pg``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import hashlib
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

__all__ = [
    "ClusterError",
    "EmbeddedCluster",
    "EmbeddedStandby",
    "INSTALL_HINT",
    "find_pg_bindir",
    "postgis_available",
]

#: What to install on Debian/Ubuntu when the server binaries or PostGIS are missing.
INSTALL_HINT = "apt-get install postgresql-15 postgresql-15-postgis-3"
#: Where clusters go when the service account cannot traverse to the requested folder.
RELOCATION_BASE = Path("/var/lib/landplatform")
#: Name of the pointer file left in the requested folder when the cluster is relocated.
POINTER_NAME = "RELOCATED.txt"
#: Environment variable users set to move the embedded cluster to another port.
PORT_ENV = "LIS_PG_PORT"
#: Include file (inside PGDATA) holding the settings this module manages.
MANAGED_CONF = "landplatform.conf"

_START_TIMEOUT_S = 60
_TAIL_LINES = 15


class ClusterError(RuntimeError):
    """The embedded cluster could not be found, initialised, started or reached.

    Messages carry the tail of the failing command's stderr (and of the server log for start
    failures) so the caller can show one exception instead of sending people to hunt for logs.
    """


# --------------------------------------------------------------------------- discovery


def _has_initdb(bindir: Path) -> bool:
    return (bindir / "initdb").is_file() and os.access(bindir / "initdb", os.X_OK)


def _major_of(path: Path) -> int:
    """Sort key for ``/usr/lib/postgresql/<major>/bin``; non-numeric names sort first."""
    try:
        return int(path.parent.name.split(".")[0])
    except ValueError:
        return -1


def find_pg_bindir() -> Path:
    """Return the directory holding ``initdb``/``pg_ctl``/``postgres``.

    Order: ``$PG_BINDIR`` (explicit wins, and is an error if wrong rather than silently
    ignored); ``pg_config --bindir`` (honours a custom build on PATH); the newest Debian-style
    ``/usr/lib/postgresql/*/bin`` (Debian keeps server binaries off PATH).
    """
    env = os.environ.get("PG_BINDIR")
    if env:
        bindir = Path(env)
        if not _has_initdb(bindir):
            raise ClusterError(f"PG_BINDIR={env} has no executable initdb; unset it or fix it")
        return bindir

    pg_config = shutil.which("pg_config")
    if pg_config:
        proc = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if proc.returncode == 0 and proc.stdout.strip():
            bindir = Path(proc.stdout.strip())
            if _has_initdb(bindir):
                return bindir

    candidates = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if _has_initdb(p)]
    if candidates:
        return max(candidates, key=_major_of)

    raise ClusterError(
        "PostgreSQL server binaries (initdb) not found. Install them with: "
        f"{INSTALL_HINT} (or set PG_BINDIR to the directory holding initdb)"
    )


def _pg_major(bindir: Path) -> int | None:
    """Major version of the server in ``bindir``, from the path or ``postgres --version``."""
    if _major_of(bindir) > 0:
        return _major_of(bindir)
    postgres = bindir / "postgres"
    if not postgres.exists():
        return None
    proc = subprocess.run([str(postgres), "--version"], capture_output=True, text=True,
                          check=False)
    match = re.search(r"(\d+)(?:\.\d+)?", proc.stdout)
    return int(match.group(1)) if match else None


def postgis_available(bindir: Path) -> bool:
    """True if ``postgis.control`` exists for the server in ``bindir``.

    Extensions are installed per major version, so a PostGIS package built for another
    PostgreSQL does not count. The share dir comes from that server's own ``pg_config`` when
    present, else from the Debian layout ``/usr/share/postgresql/<major>``.
    """
    sharedirs: list[Path] = []
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        proc = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True,
                              check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            sharedirs.append(Path(proc.stdout.strip()))
    major = _pg_major(bindir)
    if major is not None:
        sharedirs.append(Path(f"/usr/share/postgresql/{major}"))
    return any((d / "extension" / "postgis.control").is_file() for d in sharedirs)


# --------------------------------------------------------------------------- helpers


def _tail(text: str, lines: int = _TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _read_tail(path: Path, lines: int = _TAIL_LINES) -> str:
    try:
        return _tail(path.read_text(errors="replace"), lines)
    except OSError:
        return ""


def _port_in_use(port: int) -> bool:
    """True if something else holds 127.0.0.1:port (or the wildcard address).

    Binding (with SO_REUSEADDR, as the postmaster does) is the same test the server will face,
    so lingering TIME_WAIT sockets do not count but any listener does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def _can_traverse(directory: Path, account: pwd.struct_passwd) -> bool:
    """True if ``account`` has search (x) permission on ``directory`` and all its ancestors.

    Mirrors the kernel's owner/group/other precedence (ACLs are not consulted; a directory
    that only an ACL opens is treated as closed, which merely relocates the cluster).
    """
    groups = set(os.getgrouplist(account.pw_name, account.pw_gid))
    for d in (directory, *directory.parents):
        try:
            st = d.stat()
        except OSError:
            return False
        if st.st_uid == account.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _conf_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# --------------------------------------------------------------------------- the cluster


class EmbeddedCluster:
    """A PostgreSQL cluster owned by this project, living in (or pointed to by) ``root``.

    All methods are idempotent and safe to call from several processes at once: the ones that
    change state hold an exclusive ``flock`` on ``root/.lock``.
    """

    def __init__(self, root: Path, port: int, *, dbname: str = "lis", user: str = "lis") -> None:
        self.root = Path(root).absolute()
        self.port = int(port)
        self.dbname = dbname
        self.user = user
        self._storage: Path | None = None
        self._account: pwd.struct_passwd | None = None
        self._bindir: Path | None = None
        self._thread_lock = threading.RLock()
        self._lock_depth = 0
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"EmbeddedCluster(root={str(self.root)!r}, port={self.port})"

    # ----------------------------------------------------------------- paths

    @property
    def pointer_file(self) -> Path:
        """File in ``root`` naming the real location when the cluster had to be relocated."""
        return self.root / POINTER_NAME

    @property
    def storage_dir(self) -> Path:
        """Folder that really holds data/, socket/, log/ and password (``root`` or relocated).

        Decided once and then remembered on disk (pointer file, or data/ at root), so a later
        permission change can never make an existing cluster look missing.
        """
        if self._storage is None:
            self._storage = self._decide_storage()
        return self._storage

    @property
    def data_dir(self) -> Path:
        return self.storage_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.storage_dir / "socket"

    @property
    def log_file(self) -> Path:
        return self.storage_dir / "log" / "postgres.log"

    @property
    def password_file(self) -> Path:
        return self.storage_dir / "password"

    @property
    def relocated(self) -> bool:
        return self.storage_dir != self.root.resolve()

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_pg_bindir()
        return self._bindir

    def relocation_target(self) -> Path:
        """Where this root's cluster goes if the service account cannot reach ``root``."""
        digest = hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:12]
        return RELOCATION_BASE / digest

    def _decide_storage(self) -> Path:
        root = self.root.resolve()
        if self.pointer_file.is_file():
            for line in self.pointer_file.read_text().splitlines():
                if line.strip() and not line.startswith("#"):
                    return Path(line.strip())
        if (root / "data").exists() or os.geteuid() != 0:
            return root
        # Folders that do not exist yet will be created by us; judge the nearest existing one.
        parent = root.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if _can_traverse(parent, self._service_account()):
            return root
        return self.relocation_target()

    # ----------------------------------------------------------------- state

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    @property
    def password(self) -> str:
        """The superuser password (read from the password file)."""
        try:
            return self.password_file.read_text().strip()
        except FileNotFoundError:
            raise ClusterError(
                f"cluster at {self.root} is not initialised (no {self.password_file}); "
                "run ensure_running() or `python -m landplatform.pgcluster start`"
            ) from None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the superuser on the platform's database (password URL-quoted):
        for administration and the tests, never for the server."""
        return self._url(self.user, self.password)

    def _url(self, user: str, password: str) -> str:
        return (
            f"postgresql+psycopg://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@127.0.0.1:{self.port}/{quote(self.dbname, safe='')}"
        )

    def role_password(self, role: str) -> str:
        """The password of a platform role (``landplatform.roles``), made on first use."""
        folder = self.storage_dir / "roles"
        path = folder / role
        if not path.exists():
            folder.mkdir(mode=0o700, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_urlsafe(24) + "\n")
        return path.read_text().strip()

    def role_url(self, role: str) -> str:
        """SQLAlchemy URL of a platform role on the platform's database."""
        return self._url(role, self.role_password(role))

    def conninfo(self, dbname: str | None = None) -> dict[str, object]:
        """Keyword arguments for ``psycopg.connect`` (TCP on 127.0.0.1, password auth)."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": dbname or self.dbname,
            "connect_timeout": 10,
        }

    def is_running(self) -> bool:
        """True if a postmaster is running on this cluster's data directory."""
        if not self.initialized:
            return False
        proc = self._run(["pg_ctl", "status", "-D", str(self.data_dir)], check=False)
        return proc.returncode == 0

    def running_port(self) -> int | None:
        """Port the running server listens on, from postmaster.pid (line 4), if any."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            return int(lines[3])
        except (OSError, IndexError, ValueError):
            return None

    # ----------------------------------------------------------------- accounts & processes

    def _service_account(self) -> pwd.struct_passwd:
        """Unprivileged account that runs the server when we are root.

        An existing data directory keeps its owner (a cluster created by a developer account
        stays theirs); otherwise ``postgres`` (created by the Debian packages) or, failing that,
        a ``lis-postgres`` system account created on the spot.
        """
        if self._account is not None:
            return self._account
        account: pwd.struct_passwd | None = None
        if self._storage is not None and self.data_dir.exists():
            uid = self.data_dir.stat().st_uid
            if uid != 0:
                with contextlib.suppress(KeyError):
                    account = pwd.getpwuid(uid)
        for name in ("postgres", "lis-postgres"):
            if account is None:
                with contextlib.suppress(KeyError):
                    account = pwd.getpwnam(name)
        if account is None:
            proc = subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                 "lis-postgres"],
                capture_output=True, text=True, check=False,
            )
            if proc.returncode != 0:
                raise ClusterError(
                    "running as root and no 'postgres' account exists; creating system user "
                    f"'lis-postgres' failed:\n{_tail(proc.stderr)}"
                )
            account = pwd.getpwnam("lis-postgres")
        self._account = account
        return account

    def _as_service(self, argv: Sequence[str]) -> list[str]:
        """Prefix ``argv`` so it runs as the service account when we are root."""
        if os.geteuid() != 0:
            return list(argv)
        acct = self._service_account()
        if shutil.which("runuser"):
            return ["runuser", "-u", acct.pw_name, "--", *argv]
        return ["setpriv", f"--reuid={acct.pw_uid}", f"--regid={acct.pw_gid}", "--init-groups",
                "--", *argv]

    def _run(self, argv: Sequence[str], *, check: bool = True,
             log_tail: bool = False) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL binary (by name, from bindir) as the service account.

        ``cwd="/"`` because the service account usually cannot read the caller's cwd and the
        PostgreSQL tools complain about that. Failures become ClusterError with stderr's tail.
        """
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        proc = subprocess.run(self._as_service(cmd), capture_output=True, text=True,
                              cwd="/", check=False)
        if check and proc.returncode != 0:
            msg = f"{argv[0]} failed (exit {proc.returncode}): {' '.join(cmd)}"
            err = _tail(proc.stderr or proc.stdout)
            if err:
                msg += f"\n--- stderr ---\n{err}"
            if log_tail:
                log = _read_tail(self.log_file)
                if log:
                    msg += f"\n--- {self.log_file} ---\n{log}"
            raise ClusterError(msg)
        return proc

    def _give(self, path: Path, mode: int) -> None:
        """Set ``mode`` on ``path`` and, as root, hand it to the service account."""
        os.chmod(path, mode)
        if os.geteuid() == 0:
            acct = self._service_account()
            os.chown(path, acct.pw_uid, acct.pw_gid)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive, re-entrant (per instance) lock on ``root/.lock`` across processes."""
        with self._thread_lock:
            if self._lock_depth == 0:
                self.root.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                self._lock_fd = fd
                # Another process may have initialised/relocated while we waited.
                self._storage = None
                self._account = None
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0 and self._lock_fd is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                    os.close(self._lock_fd)
                    self._lock_fd = None

    # ----------------------------------------------------------------- lifecycle

    def init(self) -> None:
        """Create the cluster (initdb) unless it exists. Generates the password on first use.

        scram-sha-256 for local and TCP, so even the unix socket needs the password: other
        local users on a shared dev box cannot walk into the database.
        """
        with self._locked():
            if self.initialized:
                return
            storage = self._prepare_storage()

            if not self.password_file.exists():
                fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_urlsafe(24) + "\n")
            os.chmod(self.password_file, 0o600)

            # The password file stays the caller's; the service account gets a private copy
            # for initdb only.
            pwfile = self.password_file
            if os.geteuid() == 0:
                pwfile = storage / ".initdb-pwfile"
                fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(self.password + "\n")
                self._give(pwfile, 0o600)
            try:
                self._initdb(pwfile)
            finally:
                if pwfile != self.password_file:
                    pwfile.unlink(missing_ok=True)

            conf = self.data_dir / "postgresql.conf"
            with conf.open("a") as fh:
                fh.write(f"\n# Added by landplatform.pgcluster\ninclude_if_exists = "
                         f"'{MANAGED_CONF}'\n")
            self._write_managed_conf()

    def _prepare_storage(self) -> Path:
        """The storage folder with its socket/ and log/ (and the pointer if relocated)."""
        storage = self.storage_dir
        if storage != self.root.resolve():
            self._write_pointer(storage)
            RELOCATION_BASE.mkdir(mode=0o755, parents=True, exist_ok=True)
        storage.mkdir(parents=True, exist_ok=True)
        self._give(storage, 0o700)
        for sub in (self.socket_dir, self.log_file.parent):
            sub.mkdir(exist_ok=True)
            self._give(sub, 0o700)
        return storage

    def _initdb(self, pwfile: Path) -> None:
        base = ["initdb", "-D", str(self.data_dir), "-U", self.user, "-E", "UTF8",
                "--auth=scram-sha-256", f"--pwfile={pwfile}"]
        proc = self._run([*base, "--locale=C.UTF-8"], check=False)
        if proc.returncode != 0 and "locale" in (proc.stderr + proc.stdout).lower():
            # Older glibc has no built-in C.UTF-8; plain C still sorts bytewise and is fine.
            if self.data_dir.exists() and not any(self.data_dir.iterdir()):
                self.data_dir.rmdir()
            proc = self._run([*base, "--locale=C"], check=False)
        if proc.returncode != 0:
            raise ClusterError(
                f"initdb failed (exit {proc.returncode}) for {self.data_dir}:\n"
                f"{_tail(proc.stderr or proc.stdout)}"
            )

    def _write_pointer(self, storage: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        account = self._service_account().pw_name
        self.pointer_file.write_text(
            f"{storage}\n"
            f"# The embedded PostgreSQL cluster for {self.root} lives in the folder above:\n"
            f"# the server account '{account}' cannot traverse to this folder, and its\n"
            "# parents' permissions are deliberately left alone. Remove both to reset.\n"
        )

    def _managed_settings(self) -> str:
        """postgresql.conf settings owned by this module, rewritten on every start.

        Rewriting keeps the file in step with LIS_PG_PORT and a moved project folder. Tuning
        is modest (a laptop or CI runner); durability (fsync, synchronous_commit) is left on.
        """
        settings = {
            "listen_addresses": _conf_quote("127.0.0.1"),
            "port": str(self.port),
            "unix_socket_directories": _conf_quote(str(self.socket_dir)),
            "max_connections": "100",
            "shared_buffers": "256MB",
            "work_mem": "16MB",
            "maintenance_work_mem": "256MB",
            "effective_cache_size": "1GB",
            "max_wal_size": "2GB",
            "fsync": "on",
            "synchronous_commit": "on",
            "timezone": _conf_quote("UTC"),
            "log_line_prefix": _conf_quote("%m [%p] %q%u@%d "),
            "log_min_duration_statement": "2000",
        }
        body = "".join(f"{k} = {v}\n" for k, v in settings.items())
        return "# Managed by landplatform.pgcluster: rewritten on start, do not edit.\n" + body

    def _write_managed_conf(self) -> None:
        path = self.data_dir / MANAGED_CONF
        text = self._managed_settings()
        with contextlib.suppress(FileNotFoundError):
            if path.read_text() == text:
                return
        path.write_text(text)
        self._give(path, 0o600)

    def start(self) -> None:
        """Start the server (``pg_ctl -w``) unless it is already running.

        The port is checked first so that a foreign server on it (a system PostgreSQL, another
        checkout) produces an actionable message instead of a log excerpt.
        """
        with self._locked():
            if not self.initialized:
                raise ClusterError(f"cluster at {self.root} is not initialised; call init()")
            if self.is_running():
                running = self.running_port()
                if running is not None and running != self.port:
                    raise ClusterError(
                        f"cluster at {self.root} is already running on port {running}, not "
                        f"{self.port}; stop it first to change the port"
                    )
                return
            if _port_in_use(self.port):
                raise ClusterError(self._port_message())
            self._write_managed_conf()
            try:
                self._run(["pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file),
                           "-w", "-t", str(_START_TIMEOUT_S), "start"], log_tail=True)
            except ClusterError as exc:
                if "Address already in use" in _read_tail(self.log_file, 5):
                    raise ClusterError(self._port_message()) from exc
                raise

    def _port_message(self) -> str:
        return (
            f"port {self.port} on 127.0.0.1 is already in use by another program; stop it or "
            f"choose another port for the embedded PostgreSQL with {PORT_ENV}=<port>"
        )

    def stop(self) -> None:
        """Stop the server (fast mode: roll back sessions, then a clean shutdown). No-op if
        it is not running."""
        with self._locked():
            if not self.is_running():
                return
            proc = self._run(["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w",
                              "-t", str(_START_TIMEOUT_S), "stop"], check=False)
            if proc.returncode != 0 and self.is_running():
                raise ClusterError(f"pg_ctl stop failed for {self.data_dir}:\n"
                                   f"{_tail(proc.stderr or proc.stdout)}")

    def ensure_running(self) -> str:
        """Make the cluster usable and return its URL: init, start, create the database,
        the PostGIS extension and the platform's roles as needed. Cheap and idempotent when
        everything is in place."""
        with self._locked():
            if not self.initialized and not postgis_available(self.bindir):
                raise ClusterError(
                    f"PostGIS is not installed for the PostgreSQL in {self.bindir}. "
                    f"Install it with: {INSTALL_HINT}"
                )
            self.init()
            self.start()
            self._ensure_database()
        return self.url

    def _ensure_database(self) -> None:
        """The database, PostGIS and the platform's roles (``landplatform.roles``)."""
        import psycopg
        from psycopg import errors, sql

        from landplatform.roles import ROLES, bootstrap

        try:
            with psycopg.connect(**self.conninfo("postgres"), autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                      (self.dbname,)).fetchone()
                if not exists:
                    with contextlib.suppress(errors.DuplicateDatabase):
                        conn.execute(sql.SQL("CREATE DATABASE {}").format(
                            sql.Identifier(self.dbname)))
            with psycopg.connect(**self.conninfo(), autocommit=True) as conn:
                bootstrap(conn, {role: self.role_password(role) for role in ROLES})
        except psycopg.Error as exc:
            raise ClusterError(
                f"could not prepare database {self.dbname!r} on 127.0.0.1:{self.port}: "
                f"{str(exc).strip()}\n--- {self.log_file} ---\n{_read_tail(self.log_file)}"
            ) from exc

    def destroy(self) -> None:
        """Stop the server and delete the cluster and ``root`` (and a relocated folder).

        For tests and explicit resets only: the data is gone afterwards.
        """
        with self._locked():
            with contextlib.suppress(ClusterError):
                self.stop()
            storage = self.storage_dir
            if storage != self.root.resolve():
                shutil.rmtree(storage, ignore_errors=True)
            self._storage = None
            self._account = None
        shutil.rmtree(self.root, ignore_errors=True)


# --------------------------------------------------------------------------- standby

#: The role a standby replicates as (REPLICATION, LOGIN and nothing else).
REPLICATION_ROLE = "lis_replicator"
_HBA_MARK = "# landplatform.pgcluster: standbys replicate as " + REPLICATION_ROLE


class EmbeddedStandby(EmbeddedCluster):
    """A hot standby of an embedded cluster: ``pg_basebackup -R`` of ``primary``, started
    on its own port, replaying the primary's WAL over streaming replication.

    What a deployment does with two servers, on one machine: for the tests of reads
    from a standby (LIS_READ_DATABASE_URLS) and for trying them. The primary gets a
    replication role (``lis_replicator``, password in its ``roles/``) and a pg_hba entry
    for it on 127.0.0.1; nothing else about the primary changes, and a primary without a
    standby is untouched. The standby has the primary's databases, roles and passwords
    (``url`` and ``role_url`` work as on the primary) and is read-only.
    """

    def __init__(self, root: Path, port: int, primary: EmbeddedCluster) -> None:
        super().__init__(root, port, dbname=primary.dbname, user=primary.user)
        self.primary = primary

    @property
    def replication_passfile(self) -> Path:
        return self.storage_dir / "replication.pgpass"

    def _allow_replication(self) -> str:
        """On the primary: the replication role and its pg_hba line; its password."""
        import psycopg
        from psycopg import sql

        password = self.primary.role_password(REPLICATION_ROLE)
        with psycopg.connect(**self.primary.conninfo(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                  (REPLICATION_ROLE,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sql.SQL("{} ROLE {} LOGIN REPLICATION NOSUPERUSER NOCREATEDB "
                                 "NOCREATEROLE PASSWORD {}").format(
                sql.SQL(verb), sql.Identifier(REPLICATION_ROLE), sql.Literal(password)))
            hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
            text = hba.read_text()
            if _HBA_MARK not in text:
                # first match wins: ahead of the defaults
                hba.write_text(f"{_HBA_MARK}\nhost replication {REPLICATION_ROLE} "
                               f"127.0.0.1/32 scram-sha-256\n{text}")
                conn.execute("SELECT pg_reload_conf()")
        return password

    def init(self) -> None:
        """Copy the running primary (``pg_basebackup -R -X stream``) unless done before."""
        with self._locked():
            if self.initialized:
                return
            if not self.primary.is_running():  # (starting it here would redo its roles)
                raise ClusterError(f"the primary {self.primary.root} is not running; "
                                   "start it before making a standby of it")
            password = self._allow_replication()
            self._prepare_storage()
            for source, target in ((self.primary.password_file, self.password_file),
                                   *((f, self.storage_dir / "roles" / f.name) for f in
                                     sorted((self.primary.storage_dir / "roles").iterdir()))):
                target.parent.mkdir(mode=0o700, exist_ok=True)
                shutil.copyfile(source, target)
                os.chmod(target, 0o600)
            # The standby's WAL receiver reads this file for as long as it runs.
            self.replication_passfile.write_text(
                f"127.0.0.1:{self.primary.port}:replication:{REPLICATION_ROLE}:{password}\n")
            self._give(self.replication_passfile, 0o600)
            conninfo = (f"host=127.0.0.1 port={self.primary.port} user={REPLICATION_ROLE} "
                        f"passfile={self.replication_passfile} application_name=lis_standby")
            self._run(["pg_basebackup", "-D", str(self.data_dir), "-d", conninfo, "-R",
                       "-X", "stream", "-c", "fast"])
            self._write_managed_conf()

    def ensure_running(self) -> str:
        """Init (from the primary) and start; no database or role is made here: a standby
        takes all of those from its primary, and refuses writes."""
        with self._locked():
            self.init()
            self.start()
        return self.url

    def replay_lsn(self) -> str:
        """Where the standby's replay stands (``pg_last_wal_replay_lsn``)."""
        import psycopg

        with psycopg.connect(**self.conninfo(), autocommit=True) as conn:
            return str(conn.execute("SELECT pg_last_wal_replay_lsn()").fetchone()[0])

    def wait_for(self, lsn: str, timeout_s: float = 30.0) -> None:
        """Until the standby has replayed the primary's WAL up to ``lsn``."""
        import time

        import psycopg

        deadline = time.monotonic() + timeout_s
        with psycopg.connect(**self.conninfo(), autocommit=True) as conn:
            while True:
                done = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                                    (lsn,)).fetchone()[0]
                if done:
                    return
                if time.monotonic() > deadline:
                    raise ClusterError(f"standby {self.root} did not replay up to {lsn} "
                                       f"in {timeout_s} s")
                time.sleep(0.05)


# --------------------------------------------------------------------------- CLI


def _default_root() -> Path:
    var = os.environ.get("LIS_VAR_DIR")
    base = Path(var) if var else Path(__file__).resolve().parent.parent / "var"
    return base / "pg"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m landplatform.pgcluster {start,stop,status,url}``; one line per result.

    Exit status: 0 success/running, 1 error, 3 not running (like ``pg_ctl status``).
    """
    parser = argparse.ArgumentParser(prog="python -m landplatform.pgcluster",
                                     description="Manage the embedded PostGIS cluster.")
    parser.add_argument("command", choices=["start", "stop", "status", "url"])
    parser.add_argument("--root", type=Path, default=_default_root(),
                        help="cluster folder (default: $LIS_VAR_DIR/pg or <project>/var/pg)")
    parser.add_argument("--port", type=int, default=int(os.environ.get(PORT_ENV, "54329")),
                        help=f"TCP port on 127.0.0.1 (default: ${PORT_ENV} or 54329)")
    parser.add_argument("--dbname", default="lis")
    parser.add_argument("--user", default="lis")
    args = parser.parse_args(argv)
    cluster = EmbeddedCluster(args.root, args.port, dbname=args.dbname, user=args.user)
    try:
        where = f"data in {cluster.storage_dir}"
        if args.command == "start":
            cluster.ensure_running()
            print(f"running: 127.0.0.1:{cluster.port} database {cluster.dbname!r} ({where})")
        elif args.command == "stop":
            if cluster.is_running():
                cluster.stop()
                print(f"stopped ({where}, kept)")
            else:
                print(f"not running ({where})")
        elif args.command == "status":
            if cluster.is_running():
                port = cluster.running_port() or cluster.port
                print(f"running: 127.0.0.1:{port} ({where})")
            else:
                state = "stopped" if cluster.initialized else "not initialised"
                print(f"{state} ({where})")
                return 3
        else:
            print(cluster.url)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
