"""Each peer's own virtual environment: created with the standard library's `venv`, filled with pip.

Layout: `<peers dir>/<peer name>/` is the venv; `setup.log` in it holds pip's output and `sahay-peer.json`
(written last, so its presence means a finished setup) records what was installed. The peers dir is
`$SAHAY_CACHE_DIR/peers`, by default `~/.cache/sahay/peers`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from eval.peers.registry import PeerSpec

MARKER = "sahay-peer.json"
LOG = "setup.log"
PIP_TIMEOUT_S = 1800


class PeerSetupError(RuntimeError):
    """Creating or filling a peer's venv failed; the message ends with the tail of pip's log."""


class PeerNotInstalled(RuntimeError):
    """A peer's venv is missing, unfinished or made for another spec."""


def peers_dir(cache_dir: Path | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("SAHAY_CACHE_DIR") or "~/.cache/sahay").expanduser() / "peers"


def venv_dir(spec: PeerSpec, cache_dir: Path | None = None) -> Path:
    return peers_dir(cache_dir) / spec.name


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def read_marker(venv: Path) -> dict | None:
    try:
        return json.loads((venv / MARKER).read_text())
    except (OSError, ValueError):
        return None


def dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            file = Path(root) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total


@dataclass
class PeerStatus:
    name: str
    state: str
    """ready, missing, unfinished (a setup did not end) or stale (made for another spec)."""
    path: Path
    marker: dict | None

    @property
    def ready(self) -> bool:
        return self.state == "ready"


def peer_status(spec: PeerSpec, cache_dir: Path | None = None) -> PeerStatus:
    venv = venv_dir(spec, cache_dir)
    marker = read_marker(venv)
    if not venv_python(venv).exists():
        state = "missing"
    elif marker is None:
        state = "unfinished"
    elif marker.get("fingerprint") != spec.fingerprint():
        state = "stale"
    else:
        state = "ready"
    return PeerStatus(spec.name, state, venv, marker)


def require_ready(spec: PeerSpec, cache_dir: Path | None = None) -> Path:
    """The venv's python, or PeerNotInstalled telling which command makes it."""
    status = peer_status(spec, cache_dir)
    if status.ready:
        return venv_python(status.path)
    why = {
        "missing": "is not set up",
        "unfinished": "has an unfinished setup",
        "stale": "was set up for an older spec",
    }[status.state]
    raise PeerNotInstalled(f"peer {spec.name} {why} (in {status.path}): run `sahay eval peers setup {spec.name}`")


def _run_logged(command: list[str], log: Path, env: dict[str, str]) -> None:
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        try:
            proc = subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=PIP_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise PeerSetupError(f"`{' '.join(command)}` ran past {PIP_TIMEOUT_S} s; see {log}") from None
    if proc.returncode != 0:
        lines = [
            line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if "is ignored:" not in line
        ]
        tail = "\n".join(lines[-15:])
        raise PeerSetupError(f"`{' '.join(command)}` exited {proc.returncode}; see {log}:\n{tail}")


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_USER"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def setup_peer(
    spec: PeerSpec,
    cache_dir: Path | None = None,
    *,
    force: bool = False,
    smoke: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> dict:
    """Create (or re-create) the peer's venv and install it; returns the marker written at the end.

    A ready venv of the same spec is kept unless `force`. `smoke` scores one neutral text through the worker
    before the venv is marked ready, so a setup that succeeds has shown the adapter loads.
    """
    step = on_step or (lambda _message: None)
    status = peer_status(spec, cache_dir)
    if status.ready and not force:
        step(f"{spec.name}: ready")
        return status.marker or {}
    venv = status.path
    start = time.perf_counter()
    if venv.exists():
        if any(venv.iterdir()) and not (venv / "pyvenv.cfg").is_file():
            raise PeerSetupError(f"{venv} exists and is not a virtual environment; not deleting it")
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    env = _clean_env()
    step(f"{spec.name}: creating venv")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        raise PeerSetupError(f"python -m venv {venv} failed:\n{exc.stderr.strip()}") from None
    python = str(venv_python(venv))
    log = venv / LOG
    for args in spec.install:
        step(f"{spec.name}: pip install {' '.join(args)}")
        _run_logged([python, "-m", "pip", "install", "--no-input", *args], log, env)
    freeze = subprocess.run(
        [python, "-m", "pip", "freeze", "--all"], capture_output=True, text=True, env=env, check=False
    ).stdout.split()
    marker = {
        "name": spec.name,
        "requirement": spec.requirement,
        "fingerprint": spec.fingerprint(),
        "python": subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
        "packages": freeze,
    }
    if smoke:
        from eval.peers.scorer import PeerError, PeerScorer

        step(f"{spec.name}: checking the adapter")
        try:
            with PeerScorer(spec, python=Path(python)) as scorer:
                marker["smoke_at_risk"] = float(scorer.at_risk([spec.smoke_text])[0])
                marker["adapter"] = scorer.info
                marker["load_seconds"] = scorer.load_seconds
        except PeerError as exc:
            raise PeerSetupError(f"{spec.name} installed but its adapter does not work: {exc}") from None
    marker["setup_seconds"] = round(time.perf_counter() - start, 1)
    marker["created"] = datetime.now(UTC).isoformat(timespec="seconds")
    (venv / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    step(f"{spec.name}: ready in {marker['setup_seconds']} s")
    return marker


def remove_peer(spec: PeerSpec, cache_dir: Path | None = None) -> bool:
    venv = venv_dir(spec, cache_dir)
    if not venv.exists():
        return False
    shutil.rmtree(venv)
    return True
