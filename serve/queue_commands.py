"""`sahay queue purge | export`: retention and the retraining loop, on the service's database (migrated first, so
no setup). Neither prints any text: counts only.

Both are audited like the API (issue #6): a purge that purged something and every export write one audit record
(`purge`, `export`) whose who is `cli:<login name>` with role admin (`serve.queue.cli_actor`): the command line
works on the database directly, so whoever runs it has admin power. A dry run writes none."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from serve.keys_commands import DatabaseUrl, engine_name

queue_app = typer.Typer(
    help="Operate the moderation queue: purge expired texts, export decisions.", no_args_is_help=True
)


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _settings():
    from pydantic import ValidationError

    from serve.settings import ServeSettings, describe_settings_error

    try:
        return ServeSettings()
    except ValidationError as exc:
        raise _fail(f"bad setting: {describe_settings_error(exc)}", 2) from None


def _engine(database_url: str):
    """The migrated database's engine; exit 2 for a bad URL, 1 when the database cannot be reached."""
    from sqlalchemy.exc import SQLAlchemyError

    from serve.db import make_engine, migrate

    try:
        engine = make_engine(database_url)
    except ValueError as exc:  # a bad URL, an unknown database kind, a missing driver
        raise _fail(str(exc), 2) from None
    except OSError as exc:
        raise _fail(f"cannot open database {engine_name(database_url)}: {exc}", 1) from None
    try:
        migrate(engine)
    except (SQLAlchemyError, OSError) as exc:
        engine.dispose()
        reason = getattr(exc, "orig", None) or exc
        raise _fail(f"cannot open database {engine_name(database_url)}: {reason}", 1) from None
    return engine


def _database_failure(database_url: str, exc: Exception) -> typer.Exit:
    reason = getattr(exc, "orig", None) or exc
    return _fail(f"database {engine_name(database_url)} failed: {type(reason).__name__}", 1)


def _parse_since(value: str | None) -> datetime | None:
    """A date (YYYY-MM-DD, midnight UTC) or an ISO 8601 time (UTC when it names no zone)."""
    if value is None:
        return None
    try:
        since = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date or time: use YYYY-MM-DD or e.g. 2026-05-01T12:00:00Z", param_hint="'--since'"
        ) from None
    return since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)


@queue_app.command("purge")
def purge_command(
    database_url: DatabaseUrl = None,
    retention_days: Annotated[
        int | None,
        typer.Option(min=1, help="purge texts of items enqueued more than N days ago (default: SAHAY_RETENTION_DAYS)"),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count what would be purged; change nothing")] = False,
) -> None:
    """Purge the texts of queue items older than the retention period.

    Text, explanation spans and moderator notes are set to NULL, whatever the item's state; decisions, labels,
    signals and the audit trail stay. Idempotent. A purge of at least one text is recorded in the audit log
    (who: cli:<login name>, role admin; how many, the cutoff, the retention days)."""
    from sqlalchemy.exc import SQLAlchemyError

    from serve.queue import cli_actor
    from serve.retention import count_expired, purge_expired

    settings = _settings() if database_url is None or retention_days is None else None
    database_url = database_url or settings.database_url
    retention_days = retention_days or settings.retention_days
    engine = _engine(database_url)
    try:
        if dry_run:
            result = count_expired(engine, retention_days)
        else:
            result = purge_expired(engine, retention_days, actor=cli_actor())
    except SQLAlchemyError as exc:
        raise _database_failure(database_url, exc) from None
    finally:
        engine.dispose()
    cutoff = result.cutoff.strftime("%Y-%m-%d %H:%M UTC")
    if dry_run:
        typer.echo(
            f"would purge the text of {result.count} queue item(s) enqueued before {cutoff} "
            f"(retention {retention_days} days); dry run: nothing was changed"
        )
    else:
        typer.echo(
            f"purged the text of {result.count} queue item(s) enqueued before {cutoff} "
            f"(retention {retention_days} days); their decisions and the audit trail are kept"
        )


@queue_app.command("export")
def export_command(
    out: Annotated[Path, typer.Option("--out", help="the file to write: .jsonl or .csv", dir_okay=False)],
    database_url: DatabaseUrl = None,
    since: Annotated[
        str | None, typer.Option(help="only items decided at or after this date/time (YYYY-MM-DD or ISO 8601, UTC)")
    ] = None,
    fmt: Annotated[
        ExportFormat | None, typer.Option("--format", help="jsonl or csv (default: from the file's suffix)")
    ] = None,
) -> None:
    """Write decided items as labelled data for `sahay data build --export FILE`.

    Columns: id (the platform's item id), text, label (the moderator's final label), lang, surface. Items whose
    text was purged are skipped and counted; never author ids or notes. Each export is recorded in the audit log
    (who: cli:<login name>, role admin; how many items, --since, the format, the file's path; never a text)."""
    from sqlalchemy.exc import SQLAlchemyError

    from serve.export import export_decided, format_for
    from serve.queue import cli_actor

    since_at = _parse_since(since)
    try:
        chosen = format_for(out, fmt.value if fmt else None)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    if database_url is None:
        database_url = _settings().database_url
    engine = _engine(database_url)
    try:
        result = export_decided(engine, out, actor=cli_actor(), fmt=chosen, since=since_at)
    except SQLAlchemyError as exc:
        raise _database_failure(database_url, exc) from None
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc.strerror or exc}", 1) from None
    finally:
        engine.dispose()
    window = f" decided since {since_at.isoformat().replace('+00:00', 'Z')}" if since_at else ""
    superseded = result.skipped_superseded
    typer.echo(
        f"wrote {result.written} decided item(s){window} to {out} ({result.format}); "
        f"skipped {result.skipped_purged} whose text was purged"
        + (f" and {superseded} older decision(s) of items decided again" if superseded else "")
    )
    typer.echo(f"next: sahay data build --export {out}", err=True)
