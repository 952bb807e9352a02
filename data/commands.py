"""`sahay data ...` commands."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

app = typer.Typer(help="Build and inspect the labelled data.", no_args_is_help=True)
# Wide enough for the summary tables when output goes to a file or CI log.
console = Console(width=None if sys.stdout.isatty() else 160)


@app.command("build")
def build_command(
    out: Annotated[Path | None, typer.Option(help="output folder (default: settings data_dir)")] = None,
    datasets_dir: Annotated[Path | None, typer.Option(help="folder of public datasets")] = None,
    export: Annotated[list[Path] | None, typer.Option(help="a platform export file to include (repeatable)")] = None,
    seed: Annotated[int | None, typer.Option(help="split seed")] = None,
) -> None:
    """Load every source, de-duplicate, split leak-free, save a DatasetDict and print the summary."""
    from data.build import build_and_save
    from data.loaders import DataFileError
    from data.settings import DataSettings
    from data.summary import print_summary

    logging.basicConfig(
        level=logging.WARNING, handlers=[RichHandler(console=console, show_path=False)], format="%(message)s"
    )
    overrides = {
        k: v
        for k, v in {"data_dir": out, "datasets_dir": datasets_dir, "exports": export, "split_seed": seed}.items()
        if v
    }
    settings = DataSettings(**overrides)
    try:
        result = build_and_save(settings)
    except (DataFileError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    print_summary(result, console)
    console.print(f"saved to {settings.data_dir}")


@app.command("check")
def check_command(
    files: Annotated[list[Path], typer.Argument(help="platform export files (.csv/.jsonl/.parquet)")],
) -> None:
    """Validate platform export files: report every bad row with file and line; exit 1 if any."""
    from data.loaders import DataFileError, load_export

    failed = False
    for path in files:
        try:
            result = load_export(path)
        except DataFileError as exc:
            console.print(f"[red]error:[/] {exc}", highlight=False)
            failed = True
            continue
        report = result.report
        console.print(f"{path}: {report.rows_read} rows read, {len(result.records)} usable, {len(report.bad_rows)} bad")
        for bad in report.bad_rows:
            console.print(f"  {bad}", markup=False, highlight=False)
        failed |= bool(report.bad_rows)
    if failed:
        raise typer.Exit(1)


@app.command("describe")
def describe_command(
    export: Annotated[
        list[Path] | None, typer.Option(help="describe these export files instead of the seed corpus")
    ] = None,
    markdown: Annotated[bool, typer.Option(help="print Markdown tables")] = False,
) -> None:
    """Count labels, surfaces, tags and lengths per language (of the seed corpus by default); prints no text."""
    from data.describe import describe, to_markdown
    from data.loaders import DataFileError, load_export, load_seed
    from data.settings import DataSettings

    try:
        results = [load_export(p) for p in export] if export else [load_seed(DataSettings().seed_dir)]
    except DataFileError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    for table in describe([r for res in results for r in res.records]):
        if markdown:
            print(to_markdown(table) + "\n")
        else:
            console.print(table)
