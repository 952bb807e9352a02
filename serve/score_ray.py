"""`sahay score --engine ray`: the same scoring, shards and OUTPUT as serve/score.py, on a pool of Ray actors.

Design (why it scales to a cluster):

- The driver does no model work and never holds the texts. It validates the run, makes the shard plan
  (`InputReader.plan`: row counts from Parquet and `datasets` metadata; one pass over a JSONL or CSV file that finds
  where each shard starts, in bytes, without parsing rows), skips the shards the manifest records as done (resume),
  and turns the rest into a Ray Dataset of shard descriptors (index, first row, end row, byte offset): a few dozen
  bytes per shard.
- `map_batches` runs `ShardScorer` on an actor pool (`ActorPoolStrategy`, `--workers` actors of
  `--threads-per-worker` CPUs each, one shard in flight per actor so the shards spread evenly). Each actor loads the
  model once for the whole run (`RiskClassifier.load`, with torch and BLAS limited to its CPUs), then for each
  descriptor reads that shard's rows straight from the input (`InputReader.shard_rows`), and runs `write_shard`
  (`check_row` + `score_batch` in batches, the shard and its rejects written atomically): the very functions of
  the local engine, so the files are the same. No text crosses the object store: only descriptors go out and a
  manifest entry per shard comes back.
- The driver commits each returned entry to `_manifest.json` (the commit point, as locally), and at the end
  writes rejects.jsonl and `_SUCCESS`. Rows are in input order because a shard is read, scored and written in
  order by one actor and shards are numbered by position.
- Resume works as locally and across engines (the engine is not part of the run's identity): finished shards
  are skipped, anything else is recomputed; a retried actor task rewrites its shard atomically.

On a cluster, INPUT, OUTPUT and the model must be at the same path on every node (shared storage), and sahay must
be installed on every node; a worker finding another model version there is refused, and a shard a worker wrote
that the driver cannot see stops the run with that hint. The policy travels from the driver.

Ray is an optional dependency (`pip install "sahay[distributed]"`), imported only when this engine runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from serve.score import (
    InputReader,
    ScoreError,
    ScoreOptions,
    ScoreSummary,
    ShardSpec,
    check_options,
    commit_shard,
    done_entry,
    finish_output,
    progress_bar,
    run_identity,
    shard_intact,
    start_output,
    write_shard,
)

INSTALL_HINT = 'pip install "sahay[distributed]"'
LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2
"""Object store of a Ray instance started here: only shard descriptors and manifest entries go through it."""
CONNECT_TIMEOUT_S = 5.0
WAIT_FOR_ACTORS_S = 600
"""Longest wait for the pool's actors to be placed (Ray Data's own default waits for ever)."""
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class RayRunError(RuntimeError):
    """A worker failed in the middle of the run; the shards committed so far are kept (re-running resumes)."""


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None
    """A Ray cluster (`auto`, `HOST:PORT`, `ray://HOST:PORT`); None starts a local Ray instance for the run."""
    workers: int | None = None
    """Actors in the pool (default: as many as the cluster's CPUs hold at `threads_per_worker` each)."""
    threads_per_worker: int | None = None
    """CPUs (torch threads) per actor (default: 1, or the CPUs divided by `workers` when that is given)."""
    num_cpus: int | None = None
    """CPUs of a local Ray instance started here (default: all)."""


@dataclass
class RaySummary(ScoreSummary):
    workers: int = 0
    threads_per_worker: int = 0
    worker_stats: list[dict] = field(default_factory=list)
    """Per actor: shards, rows, busy_s (reading, scoring, writing), load_s (model load) and max_rss_mb (peak
    memory), for `sahay bench --score` and for sizing a cluster."""


# ----------------------------------------------------------------------------------------------- Ray itself


def import_ray():
    """The `ray` module, or a ScoreError that says how to install it."""
    try:
        import ray
        import ray.data  # ray[data]: a bare `ray` lacks it
    except ImportError as exc:
        raise ScoreError(f"--engine ray needs Ray Data, which is not installed ({exc}); {INSTALL_HINT}") from None
    return ray


def _check_reachable(address: str) -> None:
    """Fail fast on an address nobody listens at (Ray itself retries for minutes)."""
    host_port = address.removeprefix("ray://")
    host, sep, port = host_port.rpartition(":")
    if address in ("auto", "local") or not sep or not port.isdigit():
        return  # left to Ray, which names what it expected
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ScoreError(
            f"cannot reach a Ray cluster at {address} ({exc.strerror or exc}); start one with `ray start --head` "
            "and pass the address it prints, or leave out --address to start a local Ray instance"
        ) from None


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to `address`, or start a local Ray instance when None; True when this call initialised Ray (the
    caller then shuts it down). A process that has initialised Ray already keeps its connection (a test's local
    instance, say) and `address` is not looked at."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "warning"}
    if address is None:
        # "local": a new instance even when RAY_ADDRESS names a cluster (`--address auto` is the way to use that)
        ray.init(address="local", num_cpus=num_cpus, object_store_memory=LOCAL_OBJECT_STORE_BYTES, **quiet)
        return True
    _check_reachable(address)
    try:
        ray.init(address=address, **quiet)
    except ImportError as exc:  # ray:// needs Ray Client's gRPC, which ray[data] does not bring
        raise ScoreError(
            f'connecting to {address} needs Ray Client ({exc}): pip install "ray[client]==2.60.0", or run '
            "sahay on the head node with --address auto"
        ) from None
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise ScoreError(f"cannot connect to Ray at {address!r}: {str(exc).splitlines()[0]}") from None
    return True


def pool_size(ray, workers: int | None, threads: int | None) -> tuple[int, int]:
    """(actors, CPUs per actor) that fit the cluster's nodes; a pool that cannot be placed would wait for ever."""
    cpus = [int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")]
    if not cpus or max(cpus) < 1:
        raise ScoreError("the Ray cluster has no CPUs")

    def fits(t: int) -> int:
        return sum(c // t for c in cpus)

    if threads is None:
        threads = 1 if workers is None else max((t for t in range(1, max(cpus) + 1) if fits(t) >= workers), default=1)
    if workers is None:
        workers = fits(threads)
    if workers < 1 or threads < 1 or fits(threads) < workers:
        raise ScoreError(
            f"{workers} worker(s) of {threads} CPU(s) each do not fit the Ray cluster's nodes "
            f"({', '.join(map(str, sorted(cpus, reverse=True)))} CPUs); lower --workers or --threads-per-worker"
        )
    return workers, threads


def _limit_threads(threads: int) -> None:
    """Torch and BLAS threads of this actor: its share of the node, not every core (actors would fight)."""
    os.environ["SAHAY_THREADS"] = str(threads)  # read by the e5 backend when it loads
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)


@contextlib.contextmanager
def _quiet_data_context(ray):
    """No Ray Data progress bars or plan banners (we show our own bar); a bound on waiting for actors."""
    ctx = ray.data.DataContext.get_current()
    settings = {"enable_progress_bars": False, "print_on_execution_start": False}
    settings["wait_for_min_actors_s"] = WAIT_FOR_ACTORS_S
    saved = {k: getattr(ctx, k) for k in settings if hasattr(ctx, k)}
    for k in saved:
        setattr(ctx, k, settings[k])
    logger = logging.getLogger("ray.data")  # "progress bars disabled", "execution finished in ..."
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
        for k, v in saved.items():
            setattr(ctx, k, v)


# ----------------------------------------------------------------------------------------------- the actor


class ShardScorer:
    """A pool actor: loads the model once, then reads, checks, scores and writes whole shards (`write_shard`).

    A failure comes back as a result row ({"error", "message"}) rather than as an exception, so that the driver
    can tell a usage problem (ScoreError: exit 2) from a failure, without Ray's wrappers and retries of a
    constructor that would fail again (a node without the model, say)."""

    def __init__(self, input: str, output: str, model: str, model_version: str, policy, options: dict, threads: int):
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.load_s = 0.0
        self.failure: dict | None = None
        try:
            self._setup(input, output, model, model_version, policy, options, threads)
        except Exception as exc:  # reported with the first shard this actor is given
            self.failure = _failure(exc)

    def _setup(self, input, output, model, model_version, policy, options, threads) -> None:
        from model.classifier import RiskClassifier

        _limit_threads(threads)
        self.output = Path(output)
        self.options = ScoreOptions(**options)
        self.reader = InputReader(Path(input), self.options)
        started = time.perf_counter()
        self.classifier = RiskClassifier.load(model)
        self.load_s = time.perf_counter() - started
        _limit_threads(threads)
        if self.classifier.version != model_version:
            raise ScoreError(
                f"the model at {model} on {socket.gethostname()} is {self.classifier.version}, the driver's is "
                f"{model_version}: every node needs the same artifact at the same path"
            )
        self.policy = policy
        self.thresholds = {k: p.threshold for k, p in self.classifier.operating_points.items()}

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        results = []
        columns = (batch["index"], batch["start"], batch["end"], batch["offset"])
        for index, start, end, offset in zip(*columns, strict=True):
            spec = ShardSpec(int(index), int(start), int(end), int(offset))
            result: dict[str, Any] = {"index": spec.index, "worker": self.worker, "load_s": self.load_s}
            started = time.perf_counter()
            if self.failure is not None:
                result.update(self.failure)
            else:
                try:
                    rows = self.reader.shard_rows(spec)
                    result["entry"] = write_shard(
                        self.output,
                        spec.index,
                        spec.start,
                        rows,
                        self.classifier,
                        self.policy,
                        self.thresholds,
                        self.options,
                    )
                except Exception as exc:
                    result.update(_failure(exc))
            result["busy_s"] = time.perf_counter() - started
            result["max_rss_mb"] = _max_rss_mb()
            results.append(json.dumps(result))
        return {"result": np.array(results, dtype=object)}


def _max_rss_mb() -> float | None:
    """This actor's peak resident memory (the model, its activations, one shard), for sizing a node."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**2 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _failure(exc: Exception) -> dict:
    """An exception as a result row: its kind and the first line of its message (ours never quote a text)."""
    message = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else ""
    return {"error": "ScoreError" if isinstance(exc, ScoreError) else type(exc).__name__, "message": message}


# ----------------------------------------------------------------------------------------------- the run


def _artifact(model: Path) -> dict:
    """The model's manifest (version, operating points), read without loading the model on the driver."""
    from model.classifier import MANIFEST

    try:
        manifest = json.loads((model / MANIFEST).read_text())
        if not isinstance(manifest["version"], str) or not isinstance(manifest["operating_points"], dict):
            raise TypeError("version or operating_points of the wrong type")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ScoreError(f"{model} is not a model artifact ({type(exc).__name__}: {exc})") from None
    return manifest


def score_file_ray(
    input: str | Path,
    output: str | Path,
    *,
    model: str | Path,
    policy=None,
    options: ScoreOptions = ScoreOptions(),
    ray_options: RayOptions = RayOptions(),
    overwrite: bool = False,
    progress: bool = False,
) -> RaySummary:
    """`score_file` on a Ray actor pool (see the module's docstring): same OUTPUT, same resume.

    `model`: an artifact path (each actor loads it); `policy`: a Policy, a policy file, or None for the shipped one.
    Raises ScoreError for a usage problem (Ray missing, a cluster out of reach, before anything is written, or a
    worker refusing its node's model) and RayRunError when a worker fails midway."""
    from serve.policy import Policy, load_policy
    from serve.settings import SERVE_DIR

    if not isinstance(model, str | Path):
        raise ScoreError("--engine ray loads the model in each worker: pass the artifact's path")
    input, output, model = Path(input).resolve(), Path(output).resolve(), Path(model).resolve()
    check_options(options)
    reader = InputReader(input, options)
    artifact = _artifact(model)
    if not isinstance(policy, Policy):
        policy = load_policy(policy or SERVE_DIR / "policy.yaml")
    policy.check_operating_points(set(artifact["operating_points"]))
    ray = import_ray()
    started_ray = connect(ray_options.address, ray_options.num_cpus)
    bar = None
    try:
        workers, threads = pool_size(ray, ray_options.workers, ray_options.threads_per_worker)
        specs = reader.plan(options.shard_size)
        identity = run_identity(input, reader, artifact["version"], policy.version_tag, options)
        manifest = start_output(output, identity, overwrite)
        summary = RaySummary(output=output, workers=workers, threads_per_worker=threads)
        todo = []
        for spec in specs:
            summary.shards += 1
            summary.rows += spec.end - spec.start
            entry = done_entry(output, manifest, spec.index, spec.start, spec.end)
            if entry is None:
                todo.append(spec)
            else:
                summary.shards_skipped += 1
                summary.add(entry)
        if progress:
            bar = progress_bar(summary.rows)
            bar[0].advance(bar[1], summary.rows - sum(s.end - s.start for s in todo))
        if todo:
            constructor = {
                "input": str(input),
                "output": str(output),
                "model": str(model),
                "model_version": artifact["version"],
                "policy": policy,
                "options": asdict(options),
                "threads": threads,
            }
            pool = _run_pool(ray, todo, min(workers, len(todo)), threads, constructor)
            with contextlib.closing(pool) as results:
                _commit_results(results, output, manifest, summary, bar)
        finish_output(output, manifest, summary)
        return summary
    finally:
        if bar is not None:
            bar[0].stop()
        if started_ray:
            ray.shutdown()


def _commit_results(results, output: Path, manifest: dict, summary: RaySummary, bar) -> None:
    """Commit each shard a worker reports to the manifest (the driver's one write per shard); the first failure
    stops the run (ScoreError: a usage problem; RayRunError: anything else)."""
    stats: dict[str, dict] = {}
    for result in results:
        where = f"worker {result['worker']}, shard {result['index']}"
        if "error" in result:
            if result["error"] == "ScoreError":
                raise ScoreError(f"{result['message']} ({where})")
            raise RayRunError(f"a Ray worker failed: {result['error']}: {result['message']} ({where})")
        entry = result["entry"]
        if not shard_intact(output, entry):
            raise ScoreError(
                f"{entry['file']} written by {where} is not in {output} here: OUTPUT must be a folder every Ray "
                "node sees at the same path (shared storage)"
            )
        commit_shard(output, manifest, result["index"], entry)
        summary.add(entry)
        worker = stats.setdefault(result["worker"], {"worker": result["worker"], "shards": 0, "rows": 0, "busy_s": 0.0})
        worker["load_s"] = result["load_s"]
        worker["max_rss_mb"] = result.get("max_rss_mb")
        worker["shards"] += 1
        worker["rows"] += entry["end"] - entry["start"]
        worker["busy_s"] += result["busy_s"]
        if bar is not None:
            bar[0].advance(bar[1], entry["end"] - entry["start"])
    summary.worker_stats = sorted(stats.values(), key=lambda w: w["worker"])


def _run_pool(ray, todo: list[ShardSpec], workers: int, threads: int, constructor: dict):
    """The results of `ShardScorer` over the shards, as they finish (any order)."""
    items = [{"index": s.index, "start": s.start, "end": s.end, "offset": s.offset} for s in todo]
    with _quiet_data_context(ray):
        shards = ray.data.from_items(items, override_num_blocks=len(items))
        scored = shards.map_batches(
            ShardScorer,
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1),
            num_cpus=threads,
            fn_constructor_kwargs=constructor,
        )
        rows = iter(scored.iter_rows())
        try:
            for row in rows:
                yield json.loads(row["result"])
        except Exception as exc:  # Ray's own failures (an actor killed, a node lost); ours come back as rows
            if isinstance(exc, ScoreError | RayRunError):
                raise
            lines = [line for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
            raise RayRunError(f"Ray failed: {type(exc).__name__}: {lines[0] if lines else ''}") from None
        finally:
            rows.close()  # stops the pipeline when the driver gives up early (an error above, or Ctrl-C)
