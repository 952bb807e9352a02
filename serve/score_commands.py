"""`sahay score INPUT --out OUTPUT`: score a file (JSONL, CSV, Parquet) or a saved `datasets` dataset in bulk.

On this machine (`--engine local`, serve/score.py) or on a Ray actor pool (`--engine ray`, serve/score_ray.py; a
local Ray instance or `--address` of a cluster), with the same output. Prints counts only, never a text. Exit 2
for a usage problem (missing input, unknown format, missing column, an OUTPUT holding another run, Ray missing or
out of reach), 1 when the run fails midway (re-running resumes it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

OUTPUT_SUFFIXES = {".jsonl": "jsonl", ".parquet": "parquet", ".csv": "csv"}
ENGINES = ("local", "ray")


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def score_command(
    input: Annotated[Path, typer.Argument(help="a .jsonl, .csv or .parquet file, or a datasets save_to_disk folder")],
    out: Annotated[
        Path, typer.Option("--out", help="output folder: part-NNNNN.<format> shards, rejects.jsonl, _manifest.json")
    ],
    model: Annotated[
        Path | None, typer.Option(help="model artifact (default: SAHAY_MODEL_PATH or artifacts/model)")
    ] = None,
    policy: Annotated[
        Path | None, typer.Option(help="policy file (default: SAHAY_POLICY_PATH or the shipped policy)")
    ] = None,
    text_column: Annotated[str, typer.Option(help="column holding the text")] = "text",
    surface_column: Annotated[
        str | None, typer.Option(help="column holding each row's surface (empty: --surface)")
    ] = None,
    country_column: Annotated[
        str | None, typer.Option(help="column holding each row's ISO 3166-1 alpha-2 country (empty: unknown)")
    ] = None,
    id_column: Annotated[str, typer.Option(help="column copied into rejects.jsonl to name a bad row")] = "id",
    surface: Annotated[str, typer.Option(help="surface of rows without a surface column or value")] = "post",
    output_format: Annotated[
        str | None,
        typer.Option("--format", help="jsonl, parquet or csv (default: from OUTPUT's suffix, else jsonl)"),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="texts per model call")] = 64,
    shard_size: Annotated[int, typer.Option(min=1, help="input rows per output shard (the unit of resume)")] = 10_000,
    max_chars: Annotated[
        int, typer.Option(min=1, help="longer texts are rejected (the model reads the first 20,000 characters)")
    ] = 100_000,
    explain: Annotated[bool, typer.Option("--explain", help="add a `spans` column (slower)")] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace an OUTPUT written for another input, model or options")
    ] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar on stderr")] = True,
    engine: Annotated[
        str, typer.Option(help='local (this process) or ray (a pool of Ray actors; pip install "sahay[distributed]")')
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            help="with --engine ray: the Ray cluster (auto, HOST:PORT or ray://HOST:PORT; default: start a local "
            "Ray instance). On a cluster INPUT, OUTPUT and --model must be at the same path on every node"
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="with --engine ray: model actors (default: the CPUs / --threads-per-worker)"),
    ] = None,
    threads_per_worker: Annotated[
        int | None,
        typer.Option(min=1, help="with --engine ray: CPUs (torch threads) per actor (default: 1, or CPUs / --workers)"),
    ] = None,
) -> None:
    """Score a file of texts in bulk: the input's columns + label, p_<label>, signals, lang and the policy decision.

    Streams the input and writes OUTPUT/part-NNNNN shards atomically; re-running the same command resumes after an
    interruption (finished shards are skipped). Unusable rows go to OUTPUT/rejects.jsonl (row, reason, id; never
    the text). With --engine ray the same runs on a pool of Ray actors, each loading the model once: a local Ray
    instance, or the cluster at --address."""
    from pydantic import ValidationError

    from model.classifier import MANIFEST
    from serve.policy import PolicyError
    from serve.score import ScoreError, ScoreOptions, score_file
    from serve.settings import ServeSettings, describe_settings_error

    if engine not in ENGINES:
        raise _fail(f"unknown engine {engine!r} (use {' or '.join(ENGINES)})", 2)
    if engine == "local" and (address is not None or workers is not None or threads_per_worker is not None):
        raise _fail("--address, --workers and --threads-per-worker go with --engine ray", 2)

    if model is None or policy is None:
        try:
            settings = ServeSettings()
        except ValidationError as exc:
            raise _fail(f"bad setting: {describe_settings_error(exc)}", 2) from None
        model = model or settings.model_path
        policy = policy or settings.policy_path
    if not (Path(model) / MANIFEST).is_file():
        raise _fail(f"{model} is not a model artifact (no {MANIFEST}); train one with `sahay train`", 2)
    fmt = output_format or OUTPUT_SUFFIXES.get(out.suffix.lower(), "jsonl")
    options = ScoreOptions(
        text_column=text_column,
        surface_column=surface_column,
        country_column=country_column,
        id_column=id_column,
        surface=surface,
        max_chars=max_chars,
        explain=explain,
        batch_size=batch_size,
        shard_size=shard_size,
        format=fmt,
    )
    run = {"model": model, "policy": policy, "options": options, "overwrite": overwrite, "progress": progress}
    try:
        if engine == "ray":
            from serve.score_ray import RayOptions, RayRunError, score_file_ray  # imports Ray only when it runs

            ray_options = RayOptions(address=address, workers=workers, threads_per_worker=threads_per_worker)
            try:
                summary = score_file_ray(input, out, ray_options=ray_options, **run)
            except RayRunError as exc:
                raise _fail(f"scoring stopped: {exc}; re-run the same command to resume", 1) from None
        else:
            summary = score_file(input, out, **run)
    except ScoreError as exc:
        raise _fail(str(exc), 2) from None
    except PolicyError as exc:
        raise _fail(f"bad policy: {exc}", 2) from None
    except OSError as exc:
        raise _fail(f"scoring stopped: {exc}; re-run the same command to resume", 1) from None
    typer.echo(
        f"{summary.rows} row(s): {summary.scored} scored, {summary.rejected} rejected; "
        f"{summary.shards} shard(s), {summary.shards_skipped} skipped (already done) -> {out}"
    )
    if engine == "ray":
        typer.echo(f"on Ray: {summary.workers} worker(s) x {summary.threads_per_worker} thread(s)")
    for reason, n in sorted(summary.reasons.items()):
        typer.echo(f"  rejected: {n} x {reason}")
    if summary.rejected:
        typer.echo(f"rejected rows (row, reason, id): {out / 'rejects.jsonl'}")
