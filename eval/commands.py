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
    out: Annotated[Path, typer.Option(help="JSON report to write")] = Path("artifacts/bench/bench.json"),
    seconds: Annotated[float, typer.Option(help="time budget per model and batch size, in seconds")] = 2.0,
    threads: Annotated[int | None, typer.Option(help="CPU threads (default: SAHAY_THREADS or all cores)")] = None,
) -> None:
    """Measure throughput, latency, memory and compute of model artifacts, each in a fresh process."""
    from model.classifier import MANIFEST

    models = model or [DEFAULT_MODEL]
    for path in models:
        if not (path / MANIFEST).is_file():
            raise _fail(f"{path} is not a model artifact (no {MANIFEST}); train one with `sahay train`")
    try:
        sizes = parse_batch_sizes(batch_sizes)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if seconds <= 0 or (threads is not None and threads < 1):
        raise _fail("--seconds and --threads must be positive")

    from eval.bench import load_texts, run_bench, split_texts

    if texts is not None:
        if not texts.is_file():
            raise _fail(f"{texts} does not exist")
        try:
            bench_texts = load_texts(texts)
        except ValueError as exc:
            raise _fail(str(exc)) from None
    elif (data_dir / "dataset_dict.json").is_file():
        bench_texts = split_texts(data_dir)
    else:
        raise _fail(f"no built data in {data_dir}: run `sahay data build` or pass --texts FILE")

    with console.status("benchmarking") as status:
        report = run_bench(models, bench_texts, sizes, seconds, threads=threads, on_step=status.update)
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


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def bench_table(report: dict) -> Table:
    """One row per model and batch size; the model's own figures on its first row."""
    table = Table(title=f"sahay bench — {report['settings']['texts']} texts")
    for name in ("model", "kind", "layers", "int8", "batch", "texts/s", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(name, justify="left" if name in ("model", "kind") else "right")
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
                _fmt(m["layers"], "d") if first else "",
                ("-" if m["int8"] is None else "yes" if m["int8"] else "no") if first else "",
                str(b["batch_size"]),
                f"{b['texts_per_s']:.1f}",
                f"{lat['p50']:.2f}",
                f"{lat['p95']:.2f}",
                f"{lat['p99']:.2f}",
                f"{m['peak_rss_mb']:.0f}" if first else "",
                _fmt(m["gflop_per_text"], ".2f") if first else "",
                _fmt(None if fraction is None else 100 * fraction, ".1f"),
            )
    return table


DEFAULT_DATA = Path("artifacts/data")


def _fail_plain(message: str) -> typer.Exit:
    """_fail for messages that quote paths or data, whose brackets Rich would take for markup."""
    return _fail(escape(message))
