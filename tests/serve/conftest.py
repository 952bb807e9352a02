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
from tests.neutral_texts import neutral_tfidf_artifact

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
    def __init__(self, base_url: str, log_path: Path, process: subprocess.Popen):
        self.base_url = base_url
        self.log_path = log_path
        self.process = process

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="session")
def server(tiny_artifact, tmp_path_factory) -> Server:
    port = _free_port()
    log_path = tmp_path_factory.mktemp("serve-logs") / "stderr.log"
    env = {
        **os.environ,
        "SAHAY_MODEL_PATH": str(tiny_artifact),
        "SAHAY_HOST": "127.0.0.1",
        "SAHAY_PORT": str(port),
        "SAHAY_MAX_ITEMS": str(MAX_ITEMS),
        "SAHAY_MAX_TEXT_CHARS": str(MAX_TEXT_CHARS),
        "PYTHONUNBUFFERED": "1",
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
    srv = Server(base_url, log_path, process)
    deadline = time.monotonic() + 60
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{srv.logs()[-2000:]}")
            try:
                if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready in 60 s:\n{srv.logs()[-2000:]}")
            time.sleep(0.2)
        yield srv
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def client(server) -> httpx.Client:
    with httpx.Client(base_url=server.base_url, timeout=30) as c:
        yield c
