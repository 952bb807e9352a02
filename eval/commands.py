"""`sahay bench`: measure model artifacts and print a table; the figures go to JSON as well."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(width=None if sys.stdout.isatty() else 160)
DEFAULT_MODEL = Path("artifacts/model")


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/] {message}", highlight=False)
    return typer.Exit(2)


def parse_batch_sizes(text: str) -> list[int]:
    """'1,8,32' -> [1, 8, 32]; raises ValueError unless every item is a positive integer."""
    try:
        sizes = [int(item) for item in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--batch-sizes must be positive integers separated by commas, got {text!r}")
    return sizes


def bench_command(
    model: Annotated[
        list[Path] | None,
        typer.Option("--model", "-m", help="model artifact directory; repeat to compare (default: artifacts/model)"),
    ] = None,
    batch_sizes: Annotated[str, typer.Option(help="comma-separated batch sizes")] = "1,8,32,128",
    data_dir: Annotated[Path, typer.Option(help="built splits (sahay data build); the test texts are used")] = Path(
        "artifacts/data"
    ),
    texts: Annotated[
        Path | None, typer.Option(help="texts to use instead: .txt (one per line) or .jsonl (field 'text')")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="JSON report to write (default: artifacts/bench/bench.json, with --http bench_http.json, with "
            "--queue bench_queue.json, with --score bench_score.json)"
        ),
    ] = None,
    seconds: Annotated[
        float,
        typer.Option(
            help="time budget per model and batch size (with --http: per concurrency level; with --queue: per "
            "phase and database), in s"
        ),
    ] = 2.0,
    threads: Annotated[int | None, typer.Option(help="CPU threads (default: SAHAY_THREADS or all cores)")] = None,
    peer: Annotated[
        list[str] | None,
        typer.Option("--peer", help="also measure a peer (`sahay eval peers setup NAME` first); repeatable"),
    ] = None,
    http: Annotated[
        str | None,
        typer.Option(
            "--http",
            metavar="URL",
            help="measure a running service at this base URL instead of model artifacts (single-item requests)",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="SAHAY_API_KEY", show_default=False, help="with --http: API key, sent as a Bearer token"),
    ] = None,
    concurrency: Annotated[
        str, typer.Option(help="with --http: comma-separated numbers of requests in flight")
    ] = "1,8,32",
    queue: Annotated[
        bool,
        typer.Option(
            "--queue",
            help="measure the moderation queue instead (enqueue, claim+decide, list) on a fresh database each",
        ),
    ] = False,
    database_url: Annotated[
        list[str] | None,
        typer.Option(
            "--database-url",
            metavar="URL",
            show_default=False,
            help="with --queue: also measure this database (postgresql+psycopg://...: in a new schema, dropped "
            "after; sqlite:///FILE: a file that must not exist yet); repeatable. A temporary SQLite file is "
            "measured unless a sqlite URL is given",
        ),
    ] = None,
    score: Annotated[
        bool,
        typer.Option(
            "--score",
            help="measure bulk scoring (`sahay score`) instead: rows/s of the local engine and of the Ray engine "
            "with each --workers count, for each --model (default: artifacts/model, the other distilled model "
            "(artifacts/model-student or artifacts/model-teacher) and artifacts/baseline, those present)",
        ),
    ] = False,
    rows: Annotated[int, typer.Option(min=1, help="with --score: rows of the made-up input")] = 2000,
    workers: Annotated[str, typer.Option(help="with --score: comma-separated Ray worker counts")] = "1,2",
) -> None:
    """Measure throughput, latency, memory and compute of model artifacts and peers, each in a fresh process;
    with --http, requests/s and latency of a running service at each concurrency; with --queue, the moderation
    queue's throughput on SQLite and PostgreSQL; with --score, `sahay score`'s rows/s locally and on Ray."""
    if database_url and not queue:
        raise _fail("--database-url goes with --queue")
    if score:
        _bench_score(model, texts, out, rows, workers, other=http is not None or queue or bool(peer))
        return
    if queue:
        # The bench command is part of the CLI layer, which may reach into serve/; the eval modules themselves never
        # import serve. Imported lazily so that the model benches load no database code.
        from serve.queue_bench import QueueBenchError, queue_bench_table, run_queue_bench

        if http is not None or model or peer:
            raise _fail("--queue measures the moderation queue; leave out --http, --model and --peer")
        if seconds <= 0:
            raise _fail("--seconds must be positive")
        urls: list[str | None] = list(database_url or [])
        if not any(u is not None and u.lower().startswith("sqlite") for u in urls):
            urls.insert(0, None)  # a temporary SQLite file
        try:
            with console.status("benchmarking the queue") as status:
                report = run_queue_bench(urls, seconds, on_step=status.update)
        except QueueBenchError as exc:
            raise _fail_plain(str(exc)) from None
        console.print(queue_bench_table(report))
        out = out or Path("artifacts/bench/bench_queue.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"wrote {out}", highlight=False)
        return
    if http is not None:  # a running service, over HTTP only (eval/bench_http.py)
        from eval.bench import load_texts
        from eval.bench_http import (
            NEUTRAL_TEXTS,
            BenchHTTPError,
            bench_http_table,
            goal_line,
            parse_concurrency,
            run_http_bench,
        )

        if model or peer:
            raise _fail("--http measures a running service; leave out --model and --peer")
        if seconds <= 0:
            raise _fail("--seconds must be positive")
        try:
            levels = parse_concurrency(concurrency)
            bench_texts = load_texts(texts) if texts is not None else NEUTRAL_TEXTS
        except ValueError as exc:
            raise _fail_plain(str(exc)) from None
        try:
            with console.status("benchmarking") as status:
                report = run_http_bench(http, bench_texts, levels, seconds, api_key or None, on_step=status.update)
        except BenchHTTPError as exc:
            raise _fail_plain(str(exc)) from None
        report["settings"]["source"] = str(texts) if texts is not None else "built-in neutral texts (~40 tokens)"
        console.print(bench_http_table(report))
        if report["goal"] is not None:
            console.print(goal_line(report["goal"]), highlight=False)
        out = out or Path("artifacts/bench/bench_http.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"wrote {out}", highlight=False)
        return
    out = out or Path("artifacts/bench/bench.json")
    from model.classifier import MANIFEST

    models = model or ([] if peer else [DEFAULT_MODEL])
    for path in models:
        if not (path / MANIFEST).is_file():
            raise _fail(f"{path} is not a model artifact (no {MANIFEST}); train one with `sahay train`")
    from eval.peers import PEERS, PeerNotInstalled
    from eval.peers.envs import require_ready

    for name in peer or []:
        if name not in PEERS:
            raise _fail_plain(f"unknown peer {name!r}; expected one of {', '.join(PEERS)}")
        try:
            require_ready(PEERS[name])
        except PeerNotInstalled as exc:
            raise _fail_plain(str(exc)) from None
    try:
        sizes = parse_batch_sizes(batch_sizes)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if seconds <= 0 or (threads is not None and threads < 1):
        raise _fail("--seconds and --threads must be positive")

    from eval.bench import load_texts, run_bench, split_texts

    if texts is not None:
        try:
            bench_texts = load_texts(texts)
        except ValueError as exc:
            raise _fail(str(exc)) from None
    elif (data_dir / "dataset_dict.json").is_file():
        bench_texts = split_texts(data_dir)
    else:
        raise _fail(f"no built data in {data_dir}: run `sahay data build` or pass --texts FILE")

    with console.status("benchmarking") as status:
        report = run_bench(
            models, bench_texts, sizes, seconds, threads=threads, on_step=status.update, peers=peer or []
        )
    report["settings"]["source"] = str(texts or data_dir)
    console.print(bench_table(report))
    m = report["machine"]
    console.print(
        f"machine: {m['cpu'] or 'unknown CPU'}, {m['cpu_count']} CPUs, {m['torch_threads']} torch threads, "
        f"{m['matmul']} ceiling {m['matmul_gflops']:.1f} GFLOP/s, load average {_fmt(m['load_avg_1m'], '.2f')}",
        highlight=False,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {out}", highlight=False)


def _bench_score(models: list[Path] | None, texts: Path | None, out: Path | None, rows: int, workers: str, other: bool):
    """`sahay bench --score` (serve/score_bench.py, imported lazily like the queue bench: it needs serve/ and Ray)."""
    from model.classifier import MANIFEST
    from serve.score import ScoreError
    from serve.score_bench import ScoreBenchError, run_score_bench, score_bench_table

    if other:
        raise _fail("--score measures bulk scoring; leave out --http, --queue and --peer")
    try:
        counts = [int(item) for item in workers.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise _fail_plain(f"--workers must be positive integers separated by commas, got {workers!r}")
    defaults = [Path(f"artifacts/{name}") for name in ("model", "model-student", "model-teacher", "baseline")]
    models = models or [p for p in defaults if (p / MANIFEST).is_file()]
    if not models:
        raise _fail("no model artifact in artifacts/model, model-student, model-teacher or baseline; pass --model")
    for path in models:
        if not (path / MANIFEST).is_file():
            raise _fail_plain(f"{path} is not a model artifact (no {MANIFEST}); train one with `sahay train`")
    from eval.bench import load_texts
    from eval.bench_http import NEUTRAL_TEXTS

    try:
        bench_texts = load_texts(texts) if texts is not None else NEUTRAL_TEXTS
    except ValueError as exc:
        raise _fail_plain(str(exc)) from None
    try:
        with console.status("benchmarking sahay score") as status:
            report = run_score_bench(models, bench_texts, rows, counts, on_step=status.update)
    except (ScoreBenchError, ScoreError) as exc:  # ScoreError: Ray missing, or more workers than CPUs
        raise _fail_plain(str(exc)) from None
    report["settings"]["source"] = str(texts) if texts is not None else "built-in neutral texts (~40 tokens)"
    console.print(score_bench_table(report))
    out = out or Path("artifacts/bench/bench_score.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {out}", highlight=False)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def bench_table(report: dict) -> Table:
    """One row per model and batch size; the model's own figures on its first row."""
    table = Table(title=f"sahay bench — {report['settings']['texts']} texts")
    for name in ("model", "kind", "engine", "layers", "int8", "batch", "texts/s", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(name, justify="left" if name in ("model", "kind", "engine") else "right")
    for name in ("RSS MB", "GFLOP/text", "% of ceiling"):
        table.add_column(name, justify="right")
    for m in report["models"]:
        for i, b in enumerate(m["batches"]):
            first = i == 0
            lat = b["latency_ms"]
            fraction = b["ceiling_fraction"]
            table.add_row(
                m["path"] if first else "",
                m["kind"] if first else "",
                (m.get("engine") or "-") if first else "",
                _fmt(m["layers"], "d") if first else "",
                ("-" if m["int8"] is None else "yes" if m["int8"] else "no") if first else "",
                str(b["batch_size"]),
                f"{b['texts_per_s']:.1f}",
                f"{lat['p50']:.2f}",
                f"{lat['p95']:.2f}",
                f"{lat['p99']:.2f}",
                _fmt(m["peak_rss_mb"], ".0f") if first else "",
                _fmt(m["gflop_per_text"], ".2f") if first else "",
                _fmt(None if fraction is None else 100 * fraction, ".1f"),
            )
    return table


DEFAULT_DATA = Path("artifacts/data")


def _fail_plain(message: str) -> typer.Exit:
    """_fail for messages that quote paths or data, whose brackets Rich would take for markup."""
    return _fail(escape(message))


def eval_command(
    model: Annotated[
        list[Path] | None,
        typer.Option("--model", "-m", help="model artifact directory; repeat to compare (default: artifacts/model)"),
    ] = None,
    data: Annotated[Path, typer.Option(help="built splits (sahay data build)")] = DEFAULT_DATA,
    split: Annotated[str, typer.Option(help="split of --data to evaluate on")] = "test",
    input_file: Annotated[
        Path | None,
        typer.Option("--input", help="labelled platform export (.csv, .jsonl, .parquet) to use instead of --data"),
    ] = None,
    out: Annotated[Path, typer.Option(help="folder for metrics.json and report.html")] = Path("artifacts/eval"),
    prevalence: Annotated[
        float, typer.Option(help="share of at-risk items expected in production (alerts/10k)")
    ] = 0.01,
    bootstrap: Annotated[int, typer.Option(help="bootstrap resamples for the 95% intervals (0: none)")] = 1000,
    errors: Annotated[int, typer.Option(help="false negatives and false positives shown per model")] = 20,
    seed: Annotated[int, typer.Option(help="seed of the bootstrap resamples")] = 0,
    robustness: Annotated[
        bool, typer.Option("--robustness/--no-robustness", help="also score perturbed texts (eval/perturb.py)")
    ] = True,
    peer: Annotated[
        list[str] | None,
        typer.Option("--peer", help="a peer classifier beside the models (`sahay eval peers list`); repeatable"),
    ] = None,
    speed: Annotated[
        bool, typer.Option("--speed/--no-speed", help="also measure texts/s and latency (as `sahay bench`)")
    ] = False,
) -> None:
    """Evaluate model artifacts on labelled data; write metrics.json and a self-contained report.html."""
    import time

    from eval.evaluate import EvalData, EvalInputError, ModelScorer, evaluate
    from eval.report import write_report
    from model.classifier import MANIFEST

    started = time.perf_counter()
    models = model or [DEFAULT_MODEL]
    for path in models:
        if not (path / MANIFEST).is_file():
            raise _fail_plain(f"{path} is not a model artifact (no {MANIFEST}); train one with `sahay train`")
    names = [p.name for p in models]
    if len(set(names)) < len(names):
        names = [str(p) for p in models]
    if len(set(names)) < len(names):
        raise _fail_plain("the same model is given twice")
    if not 0 < prevalence < 1:
        raise _fail_plain(f"--prevalence must lie strictly between 0 and 1, got {prevalence}")
    if bootstrap < 0 or errors < 0:
        raise _fail_plain("--bootstrap and --errors must not be negative")

    scorers: list = []
    try:
        with console.status("loading") as status:
            dataset = EvalData.from_export(input_file) if input_file else EvalData.from_split(data, split)
            scorers += [ModelScorer(p, n) for p, n in zip(models, names, strict=True)]
            scorers += open_peers(peer or [])
            result = evaluate(scorers, dataset, prevalence, bootstrap, seed, errors, on_step=status.update)
            if robustness:
                status.update("robustness: scoring perturbed texts")
                result["robustness"] = robustness_by_model(scorers, dataset, result, seed)
    except EvalInputError as exc:
        raise _fail_plain(str(exc)) from None
    finally:
        for scorer in scorers:
            if hasattr(scorer, "close"):
                scorer.close()
    if speed:
        result["speed"] = speed_by_model(models, names, peer or [], dataset.texts)

    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.json"
    metrics_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    report_path = write_report(result, dataset, out / "report.html")
    console.print(eval_table(result))
    console.print(f"wrote {metrics_path} and {report_path} in {time.perf_counter() - started:.1f}s", highlight=False)


SPEED_BATCH_SIZES = (1, 32)


def speed_by_model(models: list[Path], names: list[str], peers: list[str], texts: list[str]) -> dict:
    """`sahay bench` on the evaluation texts, keyed by the names the quality tables use, so one report (and
    one table on screen) holds quality and speed side by side."""
    from eval.bench import run_bench

    with console.status("measuring speed") as status:
        report = run_bench(models, texts, SPEED_BATCH_SIZES, seconds=2.0, on_step=status.update, peers=peers)
    by_name = dict(zip([*names, *peers], report["models"], strict=True))
    return {"machine": report["machine"], "settings": report["settings"], "models": by_name}


def open_peers(names: list[str]) -> list:
    """Peer scorers, each in its own virtual environment (`sahay eval peers setup NAME` makes it)."""
    from eval.dataset import EvalInputError
    from eval.peers import PEERS, PeerError, PeerNotInstalled, PeerScorer

    opened = []
    for name in names:
        if name not in PEERS:
            raise EvalInputError(f"unknown peer {name!r}; expected one of {', '.join(PEERS)}")
        try:
            opened.append(PeerScorer(name))
        except (PeerNotInstalled, PeerError) as exc:
            for scorer in opened:
                scorer.close()
            raise EvalInputError(str(exc)) from None
    return opened


def robustness_by_model(scorers, dataset, result: dict, seed: int) -> dict:
    """The robustness suite for each scorer at its own at_risk threshold (peers: at_risk figures only)."""
    from eval.robustness import robustness_report

    thresholds = {m["name"]: m["thresholds"]["at_risk"] for m in result["models"]}
    out = {}
    for scorer in scorers:
        has_probs = callable(getattr(scorer, "probs", None))
        out[scorer.name] = robustness_report(
            scorer.probs if has_probs else scorer.at_risk,
            dataset.texts,
            dataset.label_sets,
            dataset.langs,
            {"at_risk": thresholds[scorer.name]},
            seed=seed,
            at_risk_only=not has_probs,
        )
    return out


def _speed_cell(entry: dict | None) -> str:
    if not entry:
        return "-"
    return " / ".join(f"{b['texts_per_s']:.0f}" for b in entry["batches"])


def _figure(figure: dict | None) -> str:
    if not figure or figure["value"] is None:
        return "-"
    if figure["low"] is None:
        return f"{figure['value']:.3f}"
    return f"{figure['value']:.3f} [{figure['low']:.2f}-{figure['high']:.2f}]"


def eval_table(result: dict) -> Table:
    """One row per signal and model: the figures at the balanced point and the alerts it would raise."""
    settings = result["settings"]
    title = f"sahay eval — {settings['data']}, {settings['n']} items, prevalence {settings['prevalence']}"
    table = Table(title=escape(title))
    for name in ("signal", "model", "threshold", "precision", "recall", "F1 [95% CI]", "PR-AUC", "ROC-AUC"):
        table.add_column(name, justify="left" if name in ("signal", "model") else "right")
    table.add_column("alerts/10k", justify="right")
    speed = result.get("speed", {}).get("models", {})
    if speed:
        table.add_column("texts/s b=1 / b=32", justify="right")
    for signal, block in result["signals"].items():
        for i, (name, figures) in enumerate(block["models"].items()):
            model = next(m for m in result["models"] if m["name"] == name)
            points = {row["point"]: row for row in result["operating_points"][name]}
            own = [row for row in result["operating_points"][name] if row["signal"] == signal]
            alerts = points.get(f"{signal}.balanced", own[0] if len(own) == 1 else {}).get("alerts_per_10k")
            table.add_row(
                f"{signal} ({block['positives']}/{block['n']})" if i == 0 else "",
                escape(name),
                f"{model['thresholds'][signal]:.3f}",
                _figure(figures["precision"]).split(" ")[0],
                _figure(figures["recall"]).split(" ")[0],
                _figure(figures["f1"]),
                _figure(figures["pr_auc"]),
                _figure(figures["roc_auc"]),
                _fmt(alerts, ".1f"),
                *([_speed_cell(speed.get(name))] if speed else []),
            )
    return table
