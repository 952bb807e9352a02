"""`sahay serve`: start the classification API (settings from SAHAY_* environment; options override them)."""

from __future__ import annotations

import json
import shlex
import socket
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

DEMO_KEY_NAME = "demo (sahay serve --demo-key)"

EXAMPLE_BODY = {
    "items": [
        {"id": "post-1", "text": "exam ki tension hai par dost saath hain", "surface": "post", "country": "IN"},
        {"id": "search-1", "text": "best biryani near me", "surface": "search", "country": "IN"},
    ]
}


def rotate_demo_key(database_url: str) -> str:
    """Revoke earlier demo keys and create a fresh service key; the plaintext is returned once, never stored."""
    from serve.db import make_engine, migrate
    from serve.keys import KeyStore

    migrate(database_url)
    engine = make_engine(database_url)
    try:
        store = KeyStore(engine)
        for record in store.list():
            if record.name == DEMO_KEY_NAME and record.active:
                store.revoke(record.key_id)
        _, key = store.create("service", DEMO_KEY_NAME)
        return key
    finally:
        engine.dispose()


def example_request(base_url: str, key: str | None) -> str:
    """A curl command that classifies two harmless texts; `key` None leaves a placeholder to fill in."""
    auth = f"Authorization: Bearer {key or '$SAHAY_API_KEY'}"
    return (
        f"curl -s {base_url}/v1/classify -H {shlex.quote(auth)} -H 'Content-Type: application/json' "
        f"-d {shlex.quote(json.dumps(EXAMPLE_BODY, ensure_ascii=False))}"
    )


def serve_command(
    model: Annotated[
        Path | None, typer.Option(help="model artifact (default: SAHAY_MODEL_PATH or artifacts/model)")
    ] = None,
    host: Annotated[str | None, typer.Option(help="address to bind (default: SAHAY_HOST or 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: SAHAY_PORT or 8000)")] = None,
    demo_key: Annotated[
        bool,
        typer.Option(help="create a fresh service key (revoking the previous demo key) and print a curl example"),
    ] = False,
) -> None:
    """Start the classification API: /v1/classify, /v1/resources, /interstitial, /metrics, /healthz, /readyz."""
    from pydantic import ValidationError

    from model.classifier import MANIFEST
    from serve.app import main
    from serve.helplines import HelplineDirectoryError, load_directory
    from serve.policy import PolicyError, load_policy
    from serve.settings import ServeSettings, describe_settings_error

    try:
        settings = ServeSettings(**{k: v for k, v in {"host": host, "port": port}.items() if v is not None})
    except ValidationError as exc:
        typer.echo(f"error: bad setting: {describe_settings_error(exc)}", err=True)
        raise typer.Exit(2) from None
    path = model or settings.model_path
    if not (Path(path) / MANIFEST).is_file():
        typer.echo(f"error: {path} is not a model artifact (no {MANIFEST}); train one with `sahay train`", err=True)
        raise typer.Exit(2)
    try:
        load_policy(settings.policy_path)
    except PolicyError as exc:
        typer.echo(f"error: the policy cannot be used:\n{exc}", err=True)
        raise typer.Exit(2) from None
    try:
        load_directory(settings.helplines_path)
    except HelplineDirectoryError as exc:
        typer.echo(f"error: the helpline directory cannot be used:\n{exc}", err=True)
        raise typer.Exit(2) from None
    key = None
    if demo_key:
        try:
            key = rotate_demo_key(settings.database_url)
        except Exception as exc:  # a bad URL, a locked or unreachable database
            typer.echo(f"error: could not create the demo key in {settings.database_url!r}: {exc}", err=True)
            raise typer.Exit(2) from None
    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host

    def on_ready(app) -> None:
        # The lifespan runs before uvicorn binds the port: print once connections are accepted.
        threading.Thread(target=announce, args=(app,), daemon=True, name="sahay-announce").start()

    def announce(app) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection((shown_host, settings.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        base = f"http://{shown_host}:{settings.port}"
        lines = [
            f"Sahay is ready on {base} (model {app.state.classifier.version}, policy {app.state.policy.version_tag}).",
            "",
            "Classify (a demo service key, shown once; revoke it with `sahay keys revoke`):"
            if key
            else "Classify (needs a service key: `sahay keys create --role service --name my-app`):",
            "  " + example_request(base, key),
            "",
            f"Support page: {base}/interstitial?country=IN&lang=hi&kind=author_support",
            f"API docs:     {base}/docs",
            "",
        ]
        typer.echo("\n".join(lines))

    main(model_path=path, host=host, port=port, on_ready=on_ready)
