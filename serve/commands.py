"""`sahay serve`: start the classification API (settings from SAHAY_* environment; options override them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve_command(
    model: Annotated[
        Path | None, typer.Option(help="model artifact (default: SAHAY_MODEL_PATH or artifacts/model)")
    ] = None,
    host: Annotated[str | None, typer.Option(help="address to bind (default: SAHAY_HOST or 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: SAHAY_PORT or 8000)")] = None,
) -> None:
    """Start the classification API: POST /v1/classify, /healthz, /readyz."""
    from model.classifier import MANIFEST
    from serve.app import main
    from serve.settings import ServeSettings

    path = model or ServeSettings().model_path
    if not (Path(path) / MANIFEST).is_file():
        typer.echo(f"error: {path} is not a model artifact (no {MANIFEST}); train one with `sahay train`", err=True)
        raise typer.Exit(2)
    main(model_path=path, host=host, port=port)
