"""A tiny artifact and a real uvicorn server in a subprocess, with its stderr captured for the log checks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from model.classifier import RiskClassifier
from serve.db import make_engine, migrate
from serve.keys import create_key
from tests.neutral_texts import neutral_tfidf_artifact
from tests.serve.browser import launch_chromium
from tests.serve.pg import PostgresServer, Unavailable, in_ci, start_postgres

REPO = Path(__file__).resolve().parents[2]


MAX_ITEMS = 16
MAX_TEXT_CHARS = 200


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory) -> Path:
    return neutral_tfidf_artifact(tmp_path_factory.mktemp("serve-artifact"))


@pytest.fixture(scope="session")
def artifact_version(tiny_artifact) -> str:
    return RiskClassifier.load(tiny_artifact).version


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, base_url: str, log_path: Path, process: subprocess.Popen, database_url: str):
        self.base_url = base_url
        self.log_path = log_path
        self.process = process
        self.database_url = database_url
        self._keys: dict[str, str] = {}

    def key(self, role: str) -> str:
        """An API key with `role` in this server's database (made once per role)."""
        if role not in self._keys:
            self._keys[role] = create_key(self.database_url, role, f"tests-{role}")
        return self._keys[role]

    def auth_headers(self, role: str = "service") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key(role)}"}

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def start_server(artifact: Path, log_dir: Path, **env_overrides: str) -> Server:
    """A real `serve.app.main()` in a subprocess on a free port, ready (/readyz 200) when this returns."""
    port = _free_port()
    log_path = log_dir / f"stderr-{port}.log"
    database_url = env_overrides.pop("SAHAY_DATABASE_URL", f"sqlite:///{log_dir / f'sahay-{port}.db'}")
    env = {
        **os.environ,
        "SAHAY_MODEL_PATH": str(artifact),
        "SAHAY_HOST": "127.0.0.1",
        "SAHAY_PORT": str(port),
        "SAHAY_MAX_ITEMS": str(MAX_ITEMS),
        "SAHAY_MAX_TEXT_CHARS": str(MAX_TEXT_CHARS),
        "SAHAY_DATABASE_URL": database_url,
        "PYTHONUNBUFFERED": "1",
        **env_overrides,
    }
    with open(log_path, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", "from serve.app import main; main()"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    base_url = f"http://127.0.0.1:{port}"
    srv = Server(base_url, log_path, process, database_url)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{srv.logs()[-2000:]}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return srv
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop_server(srv)
            pytest.fail(f"server not ready in 60 s:\n{srv.logs()[-2000:]}")
        time.sleep(0.2)


def stop_server(srv: Server) -> int:
    """SIGTERM, then SIGKILL after 10 s; the exit code."""
    srv.process.terminate()
    try:
        return srv.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        srv.process.kill()
        return srv.process.wait()


@pytest.fixture(scope="session")
def server(tiny_artifact, tmp_path_factory) -> Server:
    srv = start_server(tiny_artifact, tmp_path_factory.mktemp("serve-logs"))
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture
def client(server) -> httpx.Client:
    with httpx.Client(base_url=server.base_url, timeout=30, headers=server.auth_headers("service")) as c:
        yield c


# --- databases: SQLite and PostgreSQL (see tests/serve/pg.py for where the PostgreSQL server comes from) ---------


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """The run's PostgreSQL server, started on first use; skipped without one (failed in CI or when broken)."""
    try:
        server = start_postgres()
    except Unavailable as exc:
        if exc.broken:
            pytest.fail(f"PostgreSQL: {exc}", pytrace=False)
        if in_ci():
            pytest.fail(f"PostgreSQL is required when CI is set: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_database_url(postgres_server) -> str:
    """A fresh, empty PostgreSQL database for one test (dropped after it): postgresql+psycopg://..."""
    url = postgres_server.create_database()
    try:
        yield url
    finally:
        postgres_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A fresh, empty database for one test, once on SQLite (a file in tmp_path) and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'sahay.db'}"
    return request.getfixturevalue("postgres_database_url")


@pytest.fixture
def engine(database_url):
    """A migrated engine on the `database_url` database (SQLite, then PostgreSQL), disposed of after the test."""
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


# --- the browser tests ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium (tests/serve/browser.py); skipped without it or Playwright, failed under CI."""
    yield from launch_chromium()
