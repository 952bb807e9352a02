"""PostgreSQL for the tests: one server per test run, a fresh database per test.

Where the server comes from, in order:
1. `SAHAY_TEST_POSTGRES_URL` (what `.ci/run` exports after `tests/serve/pg_cluster.sh start`): a server someone else
   runs; its user must be allowed to CREATE DATABASE.
2. Else a throwaway cluster that this test run starts with `tests/serve/pg_cluster.sh` (PostgreSQL's server binaries
   installed: Debian's `postgresql` package) and stops at the end of the session.
3. Else the PostgreSQL cases are skipped, with the reason, unless `CI` is set: in CI a missing PostgreSQL fails.
A PostgreSQL that is configured or installed but does not work fails the cases everywhere;
`SAHAY_TEST_POSTGRES=skip` skips them on purpose (ignored when `CI` is set).
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

CLUSTER_SCRIPT = Path(__file__).resolve().parent / "pg_cluster.sh"
URL_ENV = "SAHAY_TEST_POSTGRES_URL"
OPT_OUT_ENV = "SAHAY_TEST_POSTGRES"
TEST_DB_PREFIX = "sahay_test_"


class Unavailable(Exception):
    """No PostgreSQL for this run; the message says why and what to do.

    `broken`: PostgreSQL was configured or installed but does not work (a given URL unreachable, a cluster that
    does not start): a failure everywhere, not a skip (`SAHAY_TEST_POSTGRES=skip` opts out locally).
    """

    def __init__(self, message: str, *, broken: bool = False):
        super().__init__(message)
        self.broken = broken


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def libpq_conninfo(url: str | URL) -> str:
    """The libpq URI for a SQLAlchemy URL (`postgresql+psycopg://u@h:p/db?host=/sock` -> `postgresql://...`)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _server_binaries_installed() -> bool:
    if os.environ.get("PG_BINDIR"):
        return True
    if any(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        return True
    return any((Path(d) / "initdb").exists() for d in os.environ.get("PATH", "").split(os.pathsep) if d)


@dataclass
class PostgresServer:
    """A reachable server: `url` is a database on it whose user may create databases."""

    url: str
    cluster_dir: str | None = None  # set when this process started the cluster (and so must stop it)

    def create_database(self) -> str:
        """A new empty database; its SQLAlchemy URL."""
        import psycopg

        name = TEST_DB_PREFIX + secrets.token_hex(6)
        with psycopg.connect(libpq_conninfo(self.url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        """Drop a database made by `create_database`, closing any connections still open to it (PostgreSQL 13+)."""
        import psycopg

        name = make_url(url).database
        if not name or not name.startswith(TEST_DB_PREFIX):
            raise ValueError(f"refusing to drop {name!r}: not a test database")
        with psycopg.connect(libpq_conninfo(self.url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.cluster_dir is not None:
            subprocess.run(["bash", str(CLUSTER_SCRIPT), "stop", self.cluster_dir], check=False, timeout=120)
            self.cluster_dir = None


def _check_reachable(url: str) -> None:
    import psycopg

    try:
        with psycopg.connect(libpq_conninfo(url), connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        raise Unavailable(f"PostgreSQL at {shown} is not reachable: {exc}", broken=True) from None


def start_postgres() -> PostgresServer:
    """The server for this test run (see the module docstring), or Unavailable."""
    if os.environ.get(OPT_OUT_ENV, "").strip().lower() == "skip" and not in_ci():
        raise Unavailable(f"{OPT_OUT_ENV}=skip")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise Unavailable("the psycopg driver is not installed (pip install -e '.[dev]')") from None
    if url := os.environ.get(URL_ENV):
        _check_reachable(url)
        return PostgresServer(url)
    if not _server_binaries_installed():
        raise Unavailable(f"no PostgreSQL server binaries (Debian: apt-get install postgresql) and no {URL_ENV}")
    done = subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), "start"], capture_output=True, text=True, timeout=180, check=False
    )
    if done.returncode != 0:
        raise Unavailable(
            f"tests/serve/pg_cluster.sh start failed ({done.returncode}; {OPT_OUT_ENV}=skip skips the PostgreSQL "
            f"cases):\n{done.stderr[-3000:]}",
            broken=True,
        )
    cluster_dir = done.stdout.strip().splitlines()[-1]
    server = PostgresServer("", cluster_dir)
    try:
        server.url = subprocess.run(
            ["bash", str(CLUSTER_SCRIPT), "url", cluster_dir], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
        _check_reachable(server.url)
    except BaseException:
        server.stop()
        raise
    return server
