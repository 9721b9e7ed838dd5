"""PostgreSQL for the test suite: the server on 127.0.0.1:5432 when it answers, else a throwaway one.

The throwaway server is initdb'd into a temporary folder from the first PostgreSQL found: `pg_config
--bindir`, then /usr/lib/postgresql/*/bin (newest first), then the binaries bundled with pgserver
(a dev dependency). initdb refuses to run as root, so as root the server runs as the `postgres` OS
user (or `nobody`). It listens on 127.0.0.1 only, trusts local connections, and skips fsync: it
holds test data only. `LEDGER_TEST_PG=start` forces a throwaway server even when 5432 answers.

Every test gets a fresh database named with a random suffix (CREATE DATABASE … TEMPLATE a database
migrated once per session), so runs from parallel worktrees never collide; only databases created
here are ever dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5432
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


@dataclasses.dataclass
class PgServer:
    host: str
    port: int
    user: str = "postgres"
    process: subprocess.Popen[bytes] | None = None
    base_dir: Path | None = None  # the throwaway server's folder (data, log), removed by stop()

    @property
    def owned(self) -> bool:
        return self.process is not None

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True, connect_timeout=5
        )

    def create_database(self, name: str, *, template: str | None = None) -> str:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        with self.admin() as connection:
            connection.execute(statement)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.admin() as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)
            self.process = None
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None


def unique_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def answers(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, user: str = "postgres") -> bool:
    """True when a PostgreSQL server there lets `user` in without a password."""
    try:
        with psycopg.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=2) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def find_bindirs() -> list[Path]:
    """Folders holding initdb and postgres, most preferred first."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(out.stdout.strip()))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)]
    candidates.append(pgserver_bindir())
    seen: list[Path] = []
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file() and folder not in seen:
            seen.append(folder)
    return seen


def pgserver_bindir() -> Path:
    """The PostgreSQL binaries shipped inside the pgserver wheel (no import: it would start nothing)."""
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        return Path("/nonexistent")
    return Path(spec.origin).parent / "pginstall" / "bin"


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((DEFAULT_HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _unprivileged_ids() -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


def start_server(*, port: int | None = None, bindir: Path | None = None) -> PgServer:
    """initdb + postgres in a temporary folder, listening on 127.0.0.1:`port`; waits until it answers."""
    if bindir is None:
        found = find_bindirs()
        if not found:
            raise RuntimeError("no PostgreSQL binaries found (pg_config, /usr/lib/postgresql, pgserver)")
        bindir = found[0]
    port = port or free_port()
    base = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
    ids = _unprivileged_ids()
    as_user: dict[str, int] = {}
    if ids is not None:
        os.chown(base, *ids)
        as_user = {"user": ids[0], "group": ids[1]}
    data = base / "data"
    try:
        subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            check=True,
            timeout=120,
            cwd=base,
            **as_user,  # type: ignore[arg-type]
        )
        log = (base / "postgres.log").open("wb")
        process = subprocess.Popen(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-c",
                f"listen_addresses={DEFAULT_HOST}",
                "-c",
                "unix_socket_directories=",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=100",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=base,
            **as_user,  # type: ignore[arg-type]
        )
        log.close()
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        detail = exc.stderr.decode(errors="replace") if isinstance(exc, subprocess.CalledProcessError) else ""
        raise RuntimeError(f"could not start PostgreSQL from {bindir}: {exc} {detail}") from exc
    server = PgServer(DEFAULT_HOST, port, process=process, base_dir=base)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers(DEFAULT_HOST, port):
        if process.poll() is not None or time.monotonic() > deadline:
            output = (base / "postgres.log").read_text(errors="replace")[-2000:]
            server.stop()
            raise RuntimeError(f"PostgreSQL from {bindir} did not start on port {port}: {output}")
        time.sleep(0.1)
    return server


def session_server() -> PgServer:
    """127.0.0.1:5432 when it answers (and LEDGER_TEST_PG is not "start"), else a throwaway server."""
    if os.environ.get("LEDGER_TEST_PG", "auto") != "start" and answers(DEFAULT_HOST, DEFAULT_PORT):
        return PgServer(DEFAULT_HOST, DEFAULT_PORT)
    return start_server()
