"""A throwaway PostgreSQL server for the tests: started from real server binaries in a
temporary folder on a free loopback port, stopped and removed at the end.

Where the binaries come from, first found wins: the operating system's server package
(Debian's ``/usr/lib/postgresql/<version>/bin``), an ``initdb`` on ``PATH`` (Homebrew, other
distributions), then the pip-installable ``pgserver`` package (a test dependency of the
integration environment, for machines without the server package). PostgreSQL refuses to run
as root, so under root the server runs as the unprivileged ``postgres`` user (``nobody``
where there is none), and the folder belongs to that user.

The server is built for speed, not durability: ``fsync``, ``full_page_writes`` and
``synchronous_commit`` are off (the tests kill hookline, never the server), buffers are
small, and ``initdb`` skips its sync. A start takes one to two seconds. Password
authentication is on (``scram-sha-256``), so a wrong password is refused as it would be on a
real server.

When no server can be started, :class:`ServerUnavailable` says why; the fixture turns it into
a failure (never a skip): a missing server is a broken test environment, not a passed test.

:func:`normalized` reads what runs left in a database, SQLite or PostgreSQL, in one form, so
that a test can compare the two row by row.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import glob
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

#: The superuser the tests connect as.
USER = "hookline"
#: Settings that make a test server start fast and write little (its data is thrown away).
_FAST = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "60",
    "max_wal_size": "512MB",
    "checkpoint_timeout": "30min",
    "log_min_messages": "warning",
    "logging_collector": "off",
}
#: How long a start may take before it is given up (a loaded machine is slow, not broken).
_START_TIMEOUT = 60.0


class ServerUnavailable(RuntimeError):
    """No PostgreSQL server could be started; the message says why and what to install."""


def find_binaries() -> tuple[Path, str]:
    """The folder holding ``initdb`` and ``postgres``, and where it was found."""
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                    key=lambda path: int(Path(path).parent.parent.name)
                    if Path(path).parent.parent.name.isdigit() else 0)
    if debian:
        return Path(debian[-1]).parent, "the operating system's postgresql package"
    on_path = shutil.which("initdb")
    if on_path is not None:
        return Path(on_path).resolve().parent, "initdb on PATH"
    spec = importlib.util.find_spec("pgserver")  # located, not imported: nothing of it runs
    if spec is not None and spec.submodule_search_locations:
        found = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (found / "initdb").exists():
            return found, "the pgserver package"
    raise ServerUnavailable(
        "no PostgreSQL server binaries: install the operating system's server package "
        "(Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql) or "
        "`pip install pgserver` (tox's integration environment installs it)")


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run the server as when the tests run as root; None when
    they do not (the server then runs as the current user)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ServerUnavailable("running as root, PostgreSQL needs an unprivileged user to run "
                            "as, and there is neither a 'postgres' nor a 'nobody' user")


def _reachable_by_others(path: Path) -> bool:
    """Whether every folder above ``path`` lets other users through (``/root`` does not)."""
    return all(part.stat().st_mode & stat.S_IXOTH for part in [path, *path.parents])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """A running throwaway server; :meth:`stop` ends it and removes its folder."""

    def __init__(self, root: Path, process: subprocess.Popen[bytes], port: int, password: str,
                 origin: str) -> None:
        self.root = root
        self.process = process
        self.host = "127.0.0.1"
        self.port = port
        self.user = USER
        self.password = password
        #: Where the binaries came from (for messages).
        self.origin = origin
        self._made = 0

    def url(self, database: str = "postgres", *, password: bool = True) -> str:
        """``postgresql://`` URL of ``database``; without the password on request (for tests
        that give it through ``PGPASSWORD``)."""
        secret = f":{quote(self.password, safe='')}" if password else ""
        return f"postgresql://{self.user}{secret}@{self.host}:{self.port}/{database}"

    def admin(self) -> Any:
        """An autocommit connection to the ``postgres`` database (for CREATE DATABASE)."""
        import psycopg

        return psycopg.connect(self.url(), autocommit=True, connect_timeout=10)

    def create_database(self, prefix: str = "test") -> str:
        """A new empty database, one per test; its URL."""
        self._made += 1
        name = f"{prefix}_{self._made}_{secrets.token_hex(3)}"
        with self.admin() as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log(self) -> str:
        """What the server wrote to its log (for failure messages)."""
        try:
            return (self.root / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then SIGKILL if it does not end; remove the folder."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def start() -> Server:
    """Start a throwaway server (see the module docs); :class:`ServerUnavailable` if none can
    be started, with the reason and the server's own words."""
    bin_dir, origin = find_binaries()
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="hookline-pg-"))
    try:
        return _start_in(root, bin_dir, origin, user)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _start_in(root: Path, bin_dir: Path, origin: str, user: pwd.struct_passwd | None
              ) -> Server:
    as_user: dict[str, Any] = {}
    if user is not None:
        as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        if not _reachable_by_others(bin_dir):
            bin_dir = _copy_install(bin_dir, root / "install")
        os.chown(root, user.pw_uid, user.pw_gid)
    password = secrets.token_urlsafe(16)
    secret = root / "password"
    secret.write_text(password + "\n")
    if user is not None:
        os.chown(secret, user.pw_uid, user.pw_gid)
    data = root / "data"
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    env.pop("PGDATA", None)
    initdb = subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={secret}",
         "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync",
         "--no-instructions"],
        capture_output=True, text=True, env=env, cwd=root, timeout=_START_TIMEOUT, **as_user)
    secret.unlink()
    if initdb.returncode != 0:
        raise ServerUnavailable(f"initdb from {origin} ({bin_dir}) failed with exit code "
                                f"{initdb.returncode}:\n{initdb.stdout}{initdb.stderr}")
    for attempt in range(3):  # another process may take the free port before the server
        port = _free_port()
        settings = {**_FAST, "port": str(port), "unix_socket_directories": str(root)}
        log = open(root / "server.log", "ab")  # noqa: SIM115 - handed to the server process
        if user is not None:
            os.chown(root / "server.log", user.pw_uid, user.pw_gid)
        with log:
            process = subprocess.Popen(
                [str(bin_dir / "postgres"), "-D", str(data),
                 *(arg for name, value in settings.items() for arg in ("-c", f"{name}={value}"))],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                cwd=root, start_new_session=True, **as_user)
        server = Server(root, process, port, password, origin)
        if _wait_ready(server):
            atexit.register(server.stop)  # the fixture stops it; this covers an abort
            return server
        if process.poll() is None:
            process.kill()
        process.wait()
        if "could not bind" not in server.log() or attempt == 2:
            break
    raise ServerUnavailable(f"the PostgreSQL server from {origin} ({bin_dir}) did not start "
                            f"on 127.0.0.1:{port}; its log:\n{server.log()[-3000:]}")


def _copy_install(bin_dir: Path, into: Path) -> Path:
    """Copy a server installation the server's user cannot reach (a pip-installed server in a
    virtual environment under ``/root``) to ``into``; the copy's ``bin`` folder.

    The layout two levels up is kept: a wheel's binaries find their shared libraries in the
    ``<package>.libs`` folder beside the package (auditwheel's relative RPATH)."""
    install = bin_dir.parent  # .../site-packages/pgserver/pginstall
    top = install.parent.parent
    for part in ("bin", "lib", "share"):
        if (install / part).exists():
            shutil.copytree(install / part, into / install.relative_to(top) / part,
                            symlinks=True)
    libs = top / f"{install.parent.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, into / libs.name, symlinks=True)
    return into / install.relative_to(top) / "bin"


def _wait_ready(server: Server) -> bool:
    """Wait until the server accepts a login (True), or has died or timed out (False)."""
    import psycopg

    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        with contextlib.suppress(psycopg.OperationalError):
            psycopg.connect(server.url(), connect_timeout=2).close()
            return True
        time.sleep(0.05)
    return False


# -- what a database holds, comparable between SQLite and PostgreSQL --------------------------

#: Columns that differ between two runs that decided alike (ids, run ids, times).
_VOLATILE = {"dead_letters": {"id", "run_id", "created_at"}, "checkpoints": {"updated_at"}}
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _normal(value: Any, json_text: bool) -> Any:
    """One value in a form both databases give alike: a timestamptz as the epoch ms SQLite
    stores, JSON (SQLite's text, PostgreSQL's decoded jsonb) as sorted text, a float to 10
    significant digits (sums may be added up in another order; a real difference shows in
    the first digits)."""
    if isinstance(value, datetime.datetime):
        return (value - _EPOCH) // datetime.timedelta(milliseconds=1)
    if json_text and isinstance(value, str):
        value = json.loads(value)
    if isinstance(value, (dict, list)) or json_text:
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float):  # and a whole one as the int an untyped column keeps
        value = float(f"{value:.10g}")
        return int(value) if value.is_integer() else value
    return value


def normalized(url: str, tables: Sequence[str] = ("events", "dead_letters", "agg_by_user",
                                                  "agg_by_kind", "stage_state", "checkpoints"),
               ) -> dict[str, list[str]]:
    """The rows of ``tables`` in the database at ``url`` (SQLite or PostgreSQL), each row
    normalized (see :func:`_normal`) and the rows sorted: equal for two databases that hold
    the same data, whatever their types and row order."""
    import hookline
    from hookline.sinks import sink_class

    pipeline = hookline.Pipeline.from_entry_points()
    sink = sink_class(url, pipeline)(url, pipeline.event_class)
    try:
        json_columns = {("events", sink.rows.names[at]) for at in sink.rows.json_at}
        json_columns.add(("stage_state", "value"))
        return {table: sorted(
            repr(sorted((column, _normal(value, (table, column) in json_columns))
                        for column, value in row.items()
                        if column not in _VOLATILE.get(table, ())))
            for row in sink.read_table(table)) for table in tables}
    finally:
        sink.close()
