"""Scorers with one interface: `at_risk(texts) -> np.ndarray` of floats in [0, 1], `close()`, `with`.

`PeerScorer` keeps one worker process running in the peer's venv (`worker.py`, JSON lines over its
stdin/stdout), so the peer is loaded once and its packages never enter this process. `ModelScorer` scores one
of Sahay's model artifacts in-process: at_risk = P(ideation) + P(intent).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eval.peers.envs import require_ready
from eval.peers.registry import SHIMS_DIR, WORKER, PeerSpec, peer_spec

START_TIMEOUT_S = 300.0
"""Loading a peer (import, unpickling, weights) may take this long before the worker says it is ready."""
REQUEST_TIMEOUT_S = 600.0
"""One batch may take this long."""


class PeerError(RuntimeError):
    """The worker failed to start, died, or answered a request with an error."""


_EOF = object()


class PeerScorer:
    """A peer scored in its own venv through a long-lived worker process.

    `PeerScorer("rrt-advocate")` finds the venv under the peers dir (`sahay eval peers setup` makes it) and
    raises `PeerNotInstalled` when it is missing. `python=` runs the worker with another interpreter (setup's
    smoke check; tests with a fake adapter) and skips that check.
    """

    def __init__(
        self,
        spec: str | PeerSpec,
        *,
        cache_dir: Path | None = None,
        python: Path | str | None = None,
        threads: int | None = None,
        batch_size: int | None = None,
        start_timeout: float = START_TIMEOUT_S,
        request_timeout: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.spec = spec if isinstance(spec, PeerSpec) else peer_spec(spec)
        self.name = self.spec.name
        self.python = Path(python) if python is not None else require_ready(self.spec, cache_dir)
        self.batch_size = batch_size or self.spec.batch_size
        self.request_timeout = request_timeout
        self._next_id = 0
        self._proc: subprocess.Popen | None = None
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the worker; closed by close())
        self._replies: queue.Queue = queue.Queue()
        self._start(threads, start_timeout)

    # -- process ---------------------------------------------------------------------------------------------
    def _start(self, threads: int | None, timeout: float) -> None:
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
        env.update(self.spec.env)
        threads = threads or int(os.environ.get("SAHAY_THREADS", 0)) or None
        if threads:
            env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)})
        command = [str(self.python), "-I", str(WORKER), "--adapter", str(self.spec.adapter_path)]
        if self.spec.shims:
            command += ["--path", str(SHIMS_DIR)]
        command += ["--options", json.dumps({"threads": threads})]
        try:
            self._proc = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env
            )
        except OSError as exc:
            raise PeerError(f"cannot start the worker of {self.name} with {self.python}: {exc}") from None
        self._reader = threading.Thread(target=self._read, args=(self._proc.stdout,), daemon=True)
        self._reader.start()
        ready = self._reply(timeout, "to load")
        if not ready.get("ready"):
            self.close()
            raise PeerError(f"{self.name} failed to load: {ready.get('error')}{self._stderr_tail()}")
        self.info: dict = {
            "peer": True,
            "requirement": self.spec.requirement,
            "output": self.spec.output,
            "mapping": self.spec.mapping,
            **(ready.get("info") or {}),
        }
        self.load_seconds = float(ready.get("load_seconds") or 0.0)

    def _read(self, stream) -> None:
        for line in stream:
            try:
                self._replies.put(json.loads(line))
            except ValueError:
                self._replies.put({"error": "the worker wrote a line that is not JSON"})
        self._replies.put(_EOF)

    def _stderr_tail(self, lines: int = 12) -> str:
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode("utf-8", errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return ("\n" + "\n".join(text.splitlines()[-lines:])) if text else ""

    def _reply(self, timeout: float, doing: str) -> dict:
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:
            self.close()
            raise PeerError(f"the worker of {self.name} took more than {timeout:.0f} s {doing}") from None
        if reply is _EOF:
            code = self._proc.wait() if self._proc else None
            tail = self._stderr_tail()
            self.close()
            raise PeerError(f"the worker of {self.name} exited (code {code}) {doing}{tail}")
        return reply

    def request(self, message: dict, timeout: float | None = None) -> dict:
        """Send one request and return its reply; PeerError when the reply is an error."""
        if self._proc is None or self._proc.poll() is not None:
            raise PeerError(f"the worker of {self.name} is not running")
        self._next_id += 1
        message = {**message, "id": self._next_id}
        try:
            self._proc.stdin.write((json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8"))
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise PeerError(f"the worker of {self.name} is gone{self._stderr_tail()}") from None
        reply = self._reply(timeout or self.request_timeout, f"for request {self._next_id}")
        if reply.get("id") != self._next_id:
            raise PeerError(f"the worker of {self.name} answered request {reply.get('id')}, not {self._next_id}")
        if "error" in reply:
            raise PeerError(f"{self.name}: {reply['error']}")
        return reply

    # -- scoring ---------------------------------------------------------------------------------------------
    @property
    def points(self) -> dict[str, tuple[str, float]]:
        """The peer's one operating point, in the form `eval.scorers` reads: name -> (signal, threshold)."""
        return {"at_risk.peer": ("at_risk", self.spec.threshold)}

    def score(self, texts: Sequence[str]) -> list[dict]:
        """One dict per text: "at_risk" plus what the peer reports besides (level, confidence, ...)."""
        texts = [t if isinstance(t, str) else "" for t in texts]
        results: list[dict] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            reply = self.request({"op": "score", "texts": batch})
            if len(reply.get("results", [])) != len(batch):
                raise PeerError(f"{self.name} returned {len(reply.get('results', []))} results for {len(batch)}")
            results.extend(reply["results"])
        return results

    def at_risk(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([r["at_risk"] for r in self.score(texts)], dtype=float)

    def stats(self) -> dict:
        """The worker's counters: batches, texts, errors, score_seconds and the adapter's own (e.g. model_loads)."""
        return self.request({"op": "stats"})["stats"]

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    proc.stdin.write(b'{"op": "quit"}\n')
                    proc.stdin.flush()
                with contextlib.suppress(OSError):
                    proc.stdin.close()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            reader = getattr(self, "_reader", None)
            if reader is not None and reader is not threading.current_thread():
                reader.join(timeout=5)  # ends at the worker's EOF; closing stdout under it would race
            if proc.stdout and (reader is None or not reader.is_alive()):
                proc.stdout.close()
        with contextlib.suppress(OSError):
            self._stderr.close()

    def __enter__(self) -> PeerScorer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
