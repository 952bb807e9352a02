"""`sahay serve --demo-key` (what `make run` ends with) prints a curl example that works as printed; a bad
policy stops the start with the line that is wrong."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.serve.conftest import REPO, Server, _free_port, stop_server

SAHAY = [sys.executable, "-c", "from cli import app; app()"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "SAHAY_DATABASE_URL": f"sqlite:///{tmp_path / 'main.db'}",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def test_serve_with_demo_key_prints_a_working_curl_example(tiny_artifact, tmp_path):
    port = _free_port()
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = subprocess.Popen(
            [*SAHAY, "serve", "--model", str(tiny_artifact), "--port", str(port), "--demo-key"],
            cwd=REPO,
            env=_env(tmp_path),
            stdout=out,
            stderr=err,
        )
    srv = Server(f"http://127.0.0.1:{port}", err_path, process, "")
    try:
        deadline = time.monotonic() + 60
        while "curl " not in out_path.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, err_path.read_text()[-2000:]
            time.sleep(0.2)
        printed = out_path.read_text()
        curl = next(line.strip() for line in printed.splitlines() if line.strip().startswith("curl "))
        assert f"127.0.0.1:{port}" in curl and "Bearer sahay_" in curl
        ran = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
        results = json.loads(ran.stdout)["results"]
        assert [r["id"] for r in results] == ["post-1", "search-1"]
        assert all("decision" in r for r in results)
        assert "/interstitial?country=IN&lang=hi" in printed
        key = re.search(r"Bearer (sahay_\S+?)'", curl).group(1)
        assert key not in err_path.read_text()  # never logged
    finally:
        stop_server(srv)


def test_a_second_demo_key_revokes_the_first(tmp_path):
    from serve.commands import rotate_demo_key
    from serve.db import make_engine
    from serve.keys import KeyStore

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    first, second = rotate_demo_key(url), rotate_demo_key(url)
    store = KeyStore(make_engine(url))
    assert store.verify(first) is None
    assert store.verify(second).role == "service"


def test_a_broken_policy_stops_the_start_naming_the_line(tiny_artifact, tmp_path):
    broken = tmp_path / "policy.yaml"
    broken.write_text('version: "t1"\nrules:\n  - name: r\n    actions: [{type: teleport}]\n', encoding="utf-8")
    env = _env(tmp_path, SAHAY_POLICY_PATH=str(broken), SAHAY_MODEL_PATH=str(tiny_artifact))
    cli = subprocess.run(
        [*SAHAY, "serve", "--port", str(_free_port())], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert cli.returncode == 2
    assert "line 4" in cli.stderr and "teleport" in cli.stderr
    # The app itself (e.g. started by another process manager) refuses too, and logs why.
    direct = subprocess.run(
        [sys.executable, "-c", "from serve.app import main; main()"],
        cwd=REPO,
        env={**env, "SAHAY_PORT": str(_free_port())},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert direct.returncode != 0
    assert '"event": "policy_invalid"' in direct.stderr and "line 4" in direct.stderr


def test_a_bad_setting_is_named_and_a_secret_is_never_echoed(tiny_artifact, tmp_path):
    short_secret = "tiny-secret-1"
    env = _env(tmp_path, SAHAY_PSEUDONYM_SECRET=short_secret, SAHAY_MODEL_PATH=str(tiny_artifact))
    for cmd in ([*SAHAY, "serve"], [sys.executable, "-c", "from serve.app import main; main()"]):
        run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 2
        assert "SAHAY_PSEUDONYM_SECRET" in run.stderr
        assert short_secret not in run.stderr + run.stdout
