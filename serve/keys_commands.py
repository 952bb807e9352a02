"""`sahay keys create | list | revoke`: API keys in the service's database (migrated first, so no setup)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from serve.tables import Role

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 160)

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="database (default: SAHAY_DATABASE_URL or sqlite:///var/sahay.db)"),
]


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _store(database_url: str | None):
    """A KeyStore on the migrated database; exit 2 for a bad URL, 1 when the database cannot be reached."""
    from sqlalchemy.exc import SQLAlchemyError

    from serve.db import make_engine, migrate
    from serve.keys import KeyStore

    if database_url is None:
        from serve.settings import ServeSettings

        database_url = ServeSettings().database_url
    try:
        engine = make_engine(database_url)
        migrate(engine)
    except ValueError as exc:  # a bad URL, an unknown database kind, a missing driver
        raise _fail(str(exc), 2) from None
    except (SQLAlchemyError, OSError) as exc:
        reason = getattr(exc, "orig", None) or exc
        raise _fail(f"cannot open database {engine_name(database_url)}: {reason}", 1) from None
    return KeyStore(engine)


def engine_name(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable URL)"


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


@keys_app.command("create")
def create_command(
    role: Annotated[Role, typer.Option(help="service: classify; moderator: the queue; admin: everything")],
    name: Annotated[str, typer.Option(help="who or what uses the key, e.g. web-app")],
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key and print it (stdout, alone, for scripts) once: it is stored only as a hash."""
    store = _store(database_url)
    try:
        record, plaintext = store.create(role, name)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    finally:
        store.engine.dispose()
    typer.echo(plaintext)
    typer.echo(
        f"created key {record.key_id} (role {record.role}, name {record.name!r}). Store it now: it is not shown again.",
        err=True,
    )


@keys_app.command("list")
def list_command(database_url: DatabaseUrl = None) -> None:
    """List API keys (id, role, name, dates); never the keys themselves."""
    store = _store(database_url)
    try:
        records = store.list()
    finally:
        store.engine.dispose()
    if not records:
        typer.echo("no API keys yet; create one with `sahay keys create --role admin --name NAME`")
        return
    table = Table("key id", "role", "name", "status", "created", "last used")
    for r in records:
        status = "active" if r.active else f"revoked {_when(r.revoked_at)}"
        table.add_row(r.key_id, r.role, r.name, status, _when(r.created_at), _when(r.last_used_at))
    console.print(table)


@keys_app.command("revoke")
def revoke_command(
    key_id: Annotated[str, typer.Argument(help="the key id that `sahay keys list` shows")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an API key. Running servers refuse it within a few seconds (their cache of verified keys)."""
    from serve.keys import CACHE_TTL_S, UnknownKeyError

    store = _store(database_url)
    try:
        record = store.revoke(key_id)
    except UnknownKeyError as exc:
        raise _fail(str(exc), 1) from None
    finally:
        store.engine.dispose()
    typer.echo(
        f"revoked key {record.key_id} (role {record.role}, name {record.name!r}); "
        f"running servers refuse it within {CACHE_TTL_S:g} s"
    )
