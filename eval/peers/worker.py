"""The scoring worker: runs inside a peer's own virtual environment and speaks JSON lines on stdin/stdout.

Started by `eval.peers.scorer.PeerScorer` as `PYTHON -I worker.py --adapter FILE [--path DIR ...]
[--options JSON]`, with the peer venv's interpreter, so the peer's packages are only ever imported here. It uses
the standard library alone: nothing of Sahay is importable in a peer's environment.

The adapter file defines `load(options: dict) -> adapter`, where `adapter.score(texts: list[str])` returns one
result per text, a number in [0, 1] or a dict with such a number under "at_risk" (plus details of the peer's own,
never the text); `adapter.info()` and `adapter.stats()` (both optional) return dicts.

Protocol (one JSON object per line, UTF-8):
- after loading, the worker writes `{"ready": true, "protocol": 1, "info": {...}, "load_seconds": s}`, or
  `{"ready": false, "error": "..."}` and exits 1;
- `{"id": any, "op": "score", "texts": [str, ...]}` (op defaults to "score") ->
  `{"id": same, "results": [{"at_risk": float, ...}, ...], "seconds": s}`;
- `{"id": any, "op": "stats"}` -> `{"id": same, "stats": {"batches": n, "texts": n, ...adapter stats}}`;
- `{"id": any, "op": "quit"}` -> `{"id": same, "bye": true}`, then the worker exits 0 (so it does at end of input);
- anything else (not JSON, not an object, an unknown op, texts that are not a list of strings, an adapter that
  raises or returns the wrong shape) -> `{"id": id or null, "error": "..."}`, and the worker reads on.

Whatever the peer prints goes to stderr: file descriptor 1 is pointed at 2 after the protocol stream is set
aside, so a stray print (or C-level write) cannot corrupt a reply.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time
import traceback

PROTOCOL = 1
MAX_ERROR_CHARS = 500


class RequestError(Exception):
    """A request the worker answers with an error reply."""


def _peak_rss_mb() -> float | None:
    """This worker's peak resident memory (Linux VmHWM), for `sahay bench --peer`."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _protocol_stream():
    """The original stdout for replies; fd 1 and sys.stdout then go to stderr."""
    stream = os.fdopen(os.dup(1), "w", encoding="utf-8", newline="\n")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def _send(stream, message: dict) -> None:
    stream.write(json.dumps(message, ensure_ascii=False, allow_nan=False) + "\n")
    stream.flush()


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def _load_adapter(path: str, options: dict):
    spec = importlib.util.spec_from_file_location("sahay_peer_adapter", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load an adapter from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    if not callable(getattr(module, "load", None)):
        raise ImportError(f"{path} defines no load(options) function")
    return module.load(options)


def _result(value, index: int) -> dict:
    """One adapter result as {"at_risk": float in [0, 1], ...}."""
    if isinstance(value, dict):
        result = dict(value)
        score = result.get("at_risk")
    else:
        result, score = {}, value
    try:
        if score is None or isinstance(score, str | bytes):
            raise TypeError
        score = float(score)  # int, float, bool and numpy / torch scalars
    except (TypeError, ValueError):
        raise RequestError(f"adapter result {index} has no numeric at_risk") from None
    if math.isnan(score) or not 0.0 <= score <= 1.0:
        raise RequestError(f"adapter result {index} has at_risk {score!r} outside [0, 1]")
    result["at_risk"] = score
    return result


class Worker:
    def __init__(self, adapter) -> None:
        self.adapter = adapter
        self.batches = 0
        self.texts = 0
        self.errors = 0
        self.score_seconds = 0.0

    def handle(self, message) -> dict:
        if not isinstance(message, dict):
            raise RequestError("a request must be a JSON object")
        op = message.get("op", "score")
        if op == "score":
            return self.score(message.get("texts"))
        if op == "stats":
            stats = {"batches": self.batches, "texts": self.texts, "errors": self.errors}
            stats["score_seconds"] = round(self.score_seconds, 6)
            stats["peak_rss_mb"] = _peak_rss_mb()
            if callable(getattr(self.adapter, "stats", None)):
                stats.update(self.adapter.stats())
            return {"stats": stats}
        raise RequestError(f"unknown op {op!r}; expected 'score', 'stats' or 'quit'")

    def score(self, texts) -> dict:
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise RequestError("'texts' must be a list of strings")
        start = time.perf_counter()
        results = self.adapter.score(texts) if texts else []
        seconds = time.perf_counter() - start
        try:
            results = list(results)
        except TypeError:
            raise RequestError("the adapter returned no list of results") from None
        if len(results) != len(texts):
            raise RequestError(f"the adapter returned {len(results)} results for {len(texts)} texts")
        results = [_result(value, i) for i, value in enumerate(results)]
        self.batches += 1
        self.texts += len(texts)
        self.score_seconds += seconds
        return {"results": results, "seconds": round(seconds, 6)}

    def serve(self, lines, out) -> int:
        for raw in lines:
            try:
                line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            except UnicodeDecodeError:
                self.errors += 1
                _send(out, {"id": None, "error": "a request must be UTF-8"})
                continue
            if not line.strip():
                continue
            request_id = None
            try:
                message = json.loads(line)
                if isinstance(message, dict):
                    request_id = message.get("id")
                    if message.get("op") == "quit":
                        _send(out, {"id": request_id, "bye": True})
                        return 0
                reply = self.handle(message)
            except json.JSONDecodeError as exc:
                self.errors += 1
                reply = {"error": f"not a JSON request: {exc}"}
            except RequestError as exc:
                self.errors += 1
                reply = {"error": str(exc)}
            except Exception as exc:
                self.errors += 1
                traceback.print_exc(file=sys.stderr)
                reply = {"error": f"the peer failed: {_describe(exc)}"}
            reply["id"] = request_id
            try:
                _send(out, reply)
            except (TypeError, ValueError) as exc:  # details an adapter returned that JSON cannot hold
                self.errors += 1
                _send(out, {"id": request_id, "error": f"the reply is not JSON-serializable: {_describe(exc)}"})
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", required=True, help="adapter file defining load(options)")
    parser.add_argument("--path", action="append", default=[], help="folder to put first on sys.path (shims)")
    parser.add_argument("--options", default="{}", help="JSON object passed to load()")
    args = parser.parse_args(argv)

    out = _protocol_stream()
    start = time.perf_counter()
    try:
        options = json.loads(args.options)
        if not isinstance(options, dict):
            raise ValueError("--options must be a JSON object")
        for folder in reversed(args.path):
            sys.path.insert(0, folder)
        adapter = _load_adapter(args.adapter, options)
        info = adapter.info() if callable(getattr(adapter, "info", None)) else {}
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        _send(out, {"ready": False, "error": _describe(exc)})
        return 1
    _send(
        out, {"ready": True, "protocol": PROTOCOL, "info": info, "load_seconds": round(time.perf_counter() - start, 6)}
    )
    return Worker(adapter).serve(sys.stdin.buffer, out)


if __name__ == "__main__":
    sys.exit(main())
