"""`sahay bench --score`: rows per second of `sahay score` on this machine, per model, engine and worker count.

One made-up, benign JSONL input (the texts given, e.g. eval/bench_http.py's ~40-token everyday sentences, cycled
in a seeded shuffle) is scored by the local engine (one process, inference on every core) and by the Ray engine with
each worker count (a local Ray instance of all cores; CPUs / workers threads per actor), each run into a fresh
folder. Per run: the wall time of the scoring call (model loading and the actor pool's start included), rows/s
over that, and each worker's steady rate (its rows over the time it spent reading, scoring and writing shards),
which is what a cluster estimate multiplies. Starting the Ray instance itself is measured once, apart.
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ScoreBenchError", "make_input", "run_score_bench", "score_bench_table"]

DEFAULT_ROWS = 2000
DEFAULT_WORKERS = (1, 2)
BATCH_SIZE = 64


class ScoreBenchError(ValueError):
    """Bad bench settings (no rows, no texts, a worker count below 1)."""


def make_input(path: Path, texts: Sequence[str], rows: int, seed: int = 0) -> Path:
    """A JSONL file of `rows` rows {"id", "text"}: the texts cycled, each cycle in a new seeded order."""
    rng = random.Random(seed)
    order: list[str] = []
    with path.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            if not order:
                order = list(texts)
                rng.shuffle(order)
            fh.write(json.dumps({"id": f"b{i}", "text": order.pop()}, ensure_ascii=False) + "\n")
    return path


def _model(model: Path) -> dict:
    from model.classifier import MANIFEST

    manifest = json.loads((model / MANIFEST).read_text())
    return {"model": str(model), "kind": manifest.get("kind", "?"), "version": manifest.get("version")}


def _local_run(model: Path, source: Path, out: Path, options) -> dict:
    from model.classifier import RiskClassifier
    from serve.score import score_file

    started = time.perf_counter()
    classifier = RiskClassifier.load(model)
    load_s = time.perf_counter() - started
    summary = score_file(source, out, model=classifier, options=options)
    wall_s = time.perf_counter() - started
    busy_s = wall_s - load_s
    return {
        "engine": "local",
        "workers": 1,
        "threads_per_worker": _threads(),
        "rows": summary.rows,
        "scored": summary.scored,
        "wall_s": wall_s,
        "startup_s": load_s,
        "worker_rows_per_s": [summary.rows / busy_s],
    }


def _threads() -> int:
    """Inference threads of this process: torch's when it is loaded, else what ONNX Runtime was given."""
    import sys

    if "torch" in sys.modules:
        import torch

        return torch.get_num_threads()
    from model.backends import default_threads

    return default_threads()


def _ray_run(model: Path, source: Path, out: Path, options, workers: int) -> dict:
    from serve.score_ray import RayOptions, score_file_ray

    started = time.perf_counter()
    summary = score_file_ray(source, out, model=model, options=options, ray_options=RayOptions(workers=workers))
    wall_s = time.perf_counter() - started
    stats = summary.worker_stats
    return {
        "engine": "ray",
        "workers": summary.workers,
        "threads_per_worker": summary.threads_per_worker,
        "rows": summary.rows,
        "scored": summary.scored,
        "wall_s": wall_s,
        # pool start, the actors' model loads and scheduling: what the slowest actor did not spend on shards
        "startup_s": wall_s - max((w["busy_s"] for w in stats), default=0.0),
        "worker_rows_per_s": [w["rows"] / w["busy_s"] for w in stats if w["busy_s"] > 0],
        "worker_load_s": [w["load_s"] for w in stats],
        "worker_shards": [w["shards"] for w in stats],
        "worker_max_rss_mb": [w["max_rss_mb"] for w in stats],
    }


def run_score_bench(
    models: Sequence[Path],
    texts: Sequence[str],
    rows: int = DEFAULT_ROWS,
    workers: Sequence[int] = DEFAULT_WORKERS,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Score the same input with each model: locally, then on Ray with each worker count; the report
    `sahay bench --score` writes. Raises ScoreBenchError for bad settings and ScoreError (serve/score.py) when
    Ray is missing or the worker counts do not fit this machine."""
    if rows < 1:
        raise ScoreBenchError("--rows must be at least 1")
    if not texts:
        raise ScoreBenchError("no texts to score")
    if not workers or min(workers) < 1:
        raise ScoreBenchError("--workers must be positive integers")
    from serve.score import ScoreOptions
    from serve.score_ray import connect, import_ray

    ray = import_ray()
    # several shards per worker, so that the pool balances and the per-shard overhead stays visible but small
    shard_size = max(1, -(-rows // (4 * max(workers))))
    options = ScoreOptions(shard_size=shard_size, batch_size=BATCH_SIZE)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    step = on_step or (lambda _message: None)
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="sahay-bench-score-") as tmp:
        source = make_input(Path(tmp) / "input.jsonl", texts, rows)
        for model in models:
            step(f"{model}: local engine")
            runs.append({**_model(model), **_local_run(model, source, Path(tmp) / "o", options)})
            shutil.rmtree(Path(tmp) / "o")
        step("starting a local Ray instance")
        started = time.perf_counter()
        started_ray = connect(None)
        ray_start_s = time.perf_counter() - started if started_ray else None
        try:
            for model in models:
                for n in workers:
                    step(f"{model}: Ray, {n} worker(s)")
                    measured = _ray_run(model, source, Path(tmp) / "o", options, n)
                    runs.append({**_model(model), **measured})
                    shutil.rmtree(Path(tmp) / "o")
        finally:
            if started_ray:
                ray.shutdown()
    for run in runs:
        run["rows_per_s"] = run["rows"] / run["wall_s"]
    order = {str(m): i for i, m in enumerate(models)}
    runs.sort(key=lambda r: (order[r["model"]], r["engine"] != "local", r["workers"]))
    return {
        "settings": {"rows": rows, "shard_size": shard_size, "batch_size": BATCH_SIZE, "workers": list(workers)},
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_avg_1m_before": load_before,
            "load_avg_1m_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "python": platform.python_version(),
            "ray": ray.__version__,
        },
        "ray_start_s": ray_start_s,
        "runs": runs,
    }


def score_bench_table(report: dict[str, Any]):
    """A Rich table, one row per model and run."""
    from rich.markup import escape
    from rich.table import Table

    s, m = report["settings"], report["machine"]
    start = report["ray_start_s"]
    load = m["load_avg_1m_before"]
    caption = (
        f"wall: the scoring call (model loads and the actor pool's start included); per worker: its rows over "
        f"its time on shards; start-up: the rest; MB/actor: peak resident memory. Ray instance start-up: "
        f"{'reused' if start is None else f'{start:.1f} s'}, not included. {m['cpu_count']} CPUs, load average "
        f"{'-' if load is None else f'{load:.2f}'} before."
    )
    title = f"sahay bench --score — {s['rows']} rows, shards of {s['shard_size']}, batches of {s['batch_size']}"
    table = Table(title=escape(title), caption=escape(caption))
    columns = (
        "model",
        "engine",
        "workers x threads",
        "wall s",
        "rows/s",
        "per worker rows/s",
        "start-up s",
        "MB/actor",
    )
    for name in columns:
        table.add_column(name, justify="left" if name in ("model", "engine") else "right")
    previous = None
    for run in report["runs"]:
        per_worker = run["worker_rows_per_s"]
        table.add_row(
            escape(f"{run['model']} ({run['kind']})") if run["model"] != previous else "",
            run["engine"],
            f"{run['workers']} x {run['threads_per_worker'] or '-'}",
            f"{run['wall_s']:.1f}",
            f"{run['rows_per_s']:.1f}",
            " / ".join(f"{r:.1f}" for r in per_worker) or "-",
            f"{run['startup_s']:.1f}",
            " / ".join(f"{mb:.0f}" for mb in run.get("worker_max_rss_mb") or [] if mb is not None) or "-",
        )
        previous = run["model"]
    return table
