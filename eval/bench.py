"""Throughput, latency, memory and compute figures of model artifacts on this machine (`sahay bench`).

Every model, and the matmul ceiling, is measured in a fresh spawned process, so the peak memory, imported
libraries and thread settings of one measurement do not leak into the next.
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from eval.flops import encoder_flops_per_text, matmul_gflops
from model.backends import default_threads, e5_member

DEFAULT_BATCH_SIZES = (1, 8, 32, 128)
MIN_CALLS = 3
"""Calls per batch size even past the time budget, so the percentiles rest on more than one sample."""
MAX_CALLS = 500
"""Calls per batch size at most, so batch size 1 on a fast model ends well inside the budget."""


# -- texts -------------------------------------------------------------------------------------------------------
def load_texts(path: Path) -> list[str]:
    """Texts from a file: one per line (.txt) or the "text" field of each line (.jsonl); blank lines skipped."""
    if not path.is_file():
        raise ValueError(f"{path} does not exist")
    texts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if path.suffix != ".jsonl":
            texts.append(line)
            continue
        try:
            text = json.loads(line)["text"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path}:{number}: expected a JSON object with a string field 'text'") from None
        if not isinstance(text, str):
            raise ValueError(f"{path}:{number}: expected a JSON object with a string field 'text'")
        texts.append(text)
    if not texts:
        raise ValueError(f"{path} holds no texts")
    return texts


def split_texts(data_dir: Path, split: str = "test") -> list[str]:
    """The texts of a built split (`sahay data build`): held-out texts have the lengths users write."""
    from datasets import load_from_disk

    return list(load_from_disk(str(data_dir))[split]["text"])


# -- one process -------------------------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB.

    Reads VmHWM on Linux: ru_maxrss survives exec, so a spawned child would report its parent's peak when that
    was larger (seen with a parent holding the dataset).
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def machine_info(threads: int | None = None, seconds: float = 1.0) -> dict:
    """CPU, thread counts and the fp32 matmul ceiling, measured with the threads the models will use."""
    import torch

    gflops = matmul_gflops(seconds, threads=default_threads(threads))
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "matmul_gflops": gflops,
        "matmul": "fp32 torch.mm 1024x1024",
    }


def _measure(predict: Callable[[list[str]], object], texts: Sequence[str], batch_size: int, seconds: float) -> dict:
    """Latencies of consecutive batches (cycling over the texts) after one warm-up batch."""
    n = len(texts)

    def batch(k: int) -> list[str]:
        return [texts[(k * batch_size + j) % n] for j in range(batch_size)]

    predict(batch(0))
    latencies: list[float] = []
    start = time.perf_counter()
    while len(latencies) < MAX_CALLS and (len(latencies) < MIN_CALLS or time.perf_counter() - start < seconds):
        texts_k = batch(len(latencies) + 1)
        t0 = time.perf_counter()
        predict(texts_k)
        latencies.append(time.perf_counter() - t0)
    p50, p95, p99 = (float(v) for v in np.percentile(np.array(latencies) * 1000, [50, 95, 99]))
    return {
        "batch_size": batch_size,
        "calls": len(latencies),
        "texts_per_s": batch_size * len(latencies) / sum(latencies),
        "latency_ms": {"p50": p50, "p95": p95, "p99": p99, "mean": float(np.mean(latencies) * 1000)},
    }


def bench_model(
    path: Path,
    texts: Sequence[str],
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    seconds: float = 2.0,
    explain: bool | str = False,
    threads: int | None = None,
) -> dict:
    """Load an artifact and measure it in this process; `run_bench` calls it in a fresh one per model.

    `seconds` is the time budget of each batch size (at least MIN_CALLS, at most MAX_CALLS calls). `threads`
    sets SAHAY_THREADS, torch's intra-op threads and the BLAS pools of this process.
    """
    from model.classifier import RiskClassifier

    if threads:
        os.environ["SAHAY_THREADS"] = str(threads)
    start = time.perf_counter()
    clf = RiskClassifier.load(path)
    load_s = time.perf_counter() - start
    if threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    torch_threads = None
    if "torch" in sys.modules:  # not imported for a TF-IDF model, and it should not count in its memory
        import torch

        if threads:
            torch.set_num_threads(threads)
        torch_threads = torch.get_num_threads()
    result = {
        "path": str(path),
        "kind": clf.backend.kind,
        "version": clf.version,
        "load_s": load_s,
        "torch_threads": torch_threads,
        "engine": None,
        "layers": None,
        "int8": None,
        "tokens_per_text": None,
        "gflop_per_text": None,
    }
    e5 = e5_member(clf.backend)
    if e5 is not None:
        encoder_config = e5.encoder_config
        lengths = [len(x) for x in encoder_inputs(clf, e5, texts)]
        result |= {
            "engine": "onnxruntime" if hasattr(e5, "session") else "pytorch",
            "layers": encoder_config.num_hidden_layers,
            "int8": e5.config.quantize,
            "tokens_per_text": sum(lengths) / len(texts),
            "gflop_per_text": sum(encoder_flops_per_text(encoder_config, n) for n in lengths) / len(texts) / 1e9,
        }
    batches = [_measure(lambda b: clf.predict(b, explain=explain), texts, size, seconds) for size in batch_sizes]
    for b in batches:
        b["achieved_gflops"] = result["gflop_per_text"] * b["texts_per_s"] if result["gflop_per_text"] else None
    return result | {
        "batches": batches,
        "achieved_gflops": batches[-1]["achieved_gflops"] if batches else None,
        "peak_rss_mb": peak_rss_mb(),
    }


def encoder_inputs(clf, e5, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of every pass the encoder makes for `texts`: each text's windows (a long text is read as
    several) and, for a model that reads unsure Devanagari texts twice, the windows of their romanised copies."""
    from model.classifier import RiskClassifier
    from model.script_views import romanised, unsure_rows

    read = [RiskClassifier._prepare(t) for t in texts]
    if clf.romanised_weight:
        rows = unsure_rows(texts, clf._probs(texts))
        read += [RiskClassifier._prepare(t) for t in romanised([texts[i] for i in rows])]
    windows = getattr(e5, "_windows", None)
    return windows(read)[0] if windows else e5.token_ids(read)


def bench_peer(
    peer, texts: Sequence[str], batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES, seconds: float = 2.0, **scorer_kwargs
) -> dict:
    """A peer (eval/peers/) measured like a model: each batch is one `at_risk` call to its worker process, JSON
    over a pipe included, as a deployment would pay it; the memory is the worker's own peak."""
    from eval.peers import PeerScorer

    start = time.perf_counter()
    with PeerScorer(peer, **scorer_kwargs) as scorer:
        load_s = time.perf_counter() - start
        batches = [_measure(scorer.at_risk, texts, size, seconds) for size in batch_sizes]
        stats = scorer.stats()
        version = scorer.spec.version
    for b in batches:
        b["achieved_gflops"] = None
    return {
        "path": scorer.name,
        "kind": "peer",
        "version": version,
        "load_s": load_s,
        "torch_threads": None,
        "engine": None,
        "layers": None,
        "int8": None,
        "tokens_per_text": None,
        "gflop_per_text": None,
        "batches": batches,
        "achieved_gflops": None,
        "peak_rss_mb": stats.get("peak_rss_mb"),
    }


# -- all models --------------------------------------------------------------------------------------------------
def _quiet() -> None:
    """Worker start-up: no download/loading progress bars under the parent's status line."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _in_fresh_process(fn: Callable, *args, **kwargs):
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"), initializer=_quiet) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def run_bench(
    models: Sequence[Path],
    texts: Sequence[str],
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    seconds: float = 2.0,
    explain: bool | str = False,
    threads: int | None = None,
    ceiling_seconds: float = 1.0,
    on_step: Callable[[str], None] | None = None,
    peers: Sequence[str] = (),
    peer_kwargs: dict | None = None,
) -> dict:
    """Measure the matmul ceiling once, then each model in its own process; the report `sahay bench` writes.

    The texts are shuffled (seeded) so that consecutive batches mix sources and lengths as the split does.
    Batch sizes are measured in ascending order; the model's `achieved_gflops` is at the largest.
    """
    texts = list(texts)
    random.Random(0).shuffle(texts)
    batch_sizes = sorted(set(batch_sizes))
    if on_step:
        on_step("measuring the matmul ceiling")
    machine = _in_fresh_process(machine_info, threads, ceiling_seconds)
    ceiling = machine["matmul_gflops"]
    results = []
    for path in models:
        if on_step:
            on_step(f"measuring {path}")
        result = _in_fresh_process(bench_model, Path(path), texts, batch_sizes, seconds, explain, threads)
        for entry in [result, *result["batches"]]:
            entry["ceiling_fraction"] = entry["achieved_gflops"] / ceiling if entry["achieved_gflops"] else None
        results.append(result)
    for peer in peers:
        if on_step:
            on_step(f"measuring peer {peer}")
        result = _in_fresh_process(bench_peer, peer, texts, batch_sizes, seconds, **(peer_kwargs or {}))
        for entry in [result, *result["batches"]]:
            entry["ceiling_fraction"] = None
        results.append(result)
    settings = {
        "batch_sizes": batch_sizes,
        "seconds_per_batch_size": seconds,
        "texts": len(texts),
        "explain": explain,
        "threads": threads,
    }
    return {"machine": machine, "settings": settings, "models": results}
