"""`sahay queue purge | export` through the root command (`cli.app`), as a platform runs them: counts printed, never
text; bad options exit 2, an unreachable database exits 1; the export passes `sahay data check`.

The database tests take `database_url` (SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cli import app
from serve import queue as queue_module
from serve.queue import Queue, cli_actor
from serve.tables import QueueItem
from tests.serve.queue_helpers import decide_at, enqueue_at
from tests.serve.queue_helpers import named_entry as entry

runner = CliRunner()
DAY = timedelta(days=1)


def sahay(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env)


def flat(text: str) -> str:
    """Rich error panels wrap and frame; the words, joined by single spaces."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.fixture
def items(engine):
    """Two items enqueued 40 days ago (one decided), one 10 days ago (decided), one now; ids by name."""
    now = datetime.now(UTC)
    old_q, old_d = enqueue_at(engine, now - 40 * DAY, entry("old-q"), entry("old-d"))
    decide_at(engine, now - 39 * DAY, old_d, "none")
    (mid,) = enqueue_at(engine, now - 10 * DAY, entry("mid", lang="hi-Latn", surface="chat"))
    decide_at(engine, now - 9 * DAY, mid, "informational")
    (new,) = enqueue_at(engine, now, entry("new"))
    return {"old-q": old_q, "old-d": old_d, "mid": mid, "new": new}


def texts(engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        return dict(conn.execute(select(QueueItem.item_id, QueueItem.text)).all())


def no_text_in(output: str) -> bool:
    return "bus to the market" not in output


def audited(engine, event: str) -> list:
    """The audit records of one type, oldest first."""
    return [r for r in reversed(Queue(engine).audit(limit=100).items) if r.event == event]


def test_purge_dry_run_then_purge_then_nothing_left(engine, items, database_url):
    before = texts(engine)
    dry = sahay("queue", "purge", "--database-url", database_url, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would purge the text of 2 queue item(s)" in dry.output and "(retention 30 days)" in dry.output
    assert "nothing was changed" in dry.output and texts(engine) == before

    done = sahay("queue", "purge", "--database-url", database_url)
    assert done.exit_code == 0, done.output
    assert "purged the text of 2 queue item(s)" in done.output
    after = texts(engine)
    assert after["old-q"] is None and after["old-d"] is None and after["mid"] and after["new"]
    (record,) = audited(engine, "purge")  # the dry run wrote none
    assert (record.key_id, record.role) == (cli_actor().key_id, "admin") and record.key_id.startswith("cli")
    assert record.detail["count"] == 2 and record.detail["retention_days"] == 30

    again = sahay("queue", "purge", "--database-url", database_url)
    assert again.exit_code == 0 and "purged the text of 0 queue item(s)" in again.output

    shorter = sahay("queue", "purge", "--database-url", database_url, "--retention-days", "5")
    assert shorter.exit_code == 0 and "purged the text of 1 queue item(s)" in shorter.output
    assert "(retention 5 days)" in shorter.output and texts(engine)["mid"] is None
    assert all(no_text_in(r.output) for r in (dry, done, again, shorter))
    assert [r.detail["count"] for r in audited(engine, "purge")] == [2, 1]  # purging nothing writes no record


def test_the_command_line_is_audited_as_its_login_name(monkeypatch):
    monkeypatch.setattr(queue_module.getpass, "getuser", lambda: "asha")
    assert (cli_actor().key_id, cli_actor().role) == ("cli:asha", "admin")
    long_name = "a-very-long-login-name-from-a-directory-service"
    monkeypatch.setattr(queue_module.getpass, "getuser", lambda: long_name)
    assert cli_actor().key_id == f"cli:{long_name}"[:32] == "cli:a-very-long-login-name-from-"  # the column size

    def nobody():
        raise OSError("No username set in the environment")

    monkeypatch.setattr(queue_module.getpass, "getuser", nobody)
    assert cli_actor().key_id == "cli"


def test_purge_takes_its_defaults_from_the_environment(engine, items, database_url):
    env = {"SAHAY_DATABASE_URL": database_url, "SAHAY_RETENTION_DAYS": "5"}
    result = sahay("queue", "purge", "--dry-run", env=env)
    assert result.exit_code == 0, result.output
    assert "would purge the text of 3 queue item(s)" in result.output and "(retention 5 days)" in result.output


def test_export_writes_decided_items_that_data_check_accepts(engine, items, database_url, tmp_path):
    sahay("queue", "purge", "--database-url", database_url)  # the old decided item loses its text
    out = tmp_path / "decided.jsonl"
    result = sahay("queue", "export", "--out", str(out), "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert f"wrote 1 decided item(s) to {out} (jsonl); skipped 1 whose text was purged" in flat(result.output)
    assert no_text_in(result.output)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows == [
        {"id": "mid", "text": entry("mid").text, "label": "informational", "lang": "hi-Latn", "surface": "chat"}
    ]

    (record,) = audited(engine, "export")
    assert (record.key_id, record.role) == (cli_actor().key_id, "admin")
    assert (record.detail["count"], record.detail["format"], record.detail["since"]) == (1, "jsonl", None)
    assert no_text_in(repr(record))

    check = sahay("data", "check", str(out))
    assert check.exit_code == 0, check.output
    assert "1 rows read, 1 usable, 0 bad" in check.output

    as_csv = tmp_path / "decided.csv"
    since = (datetime.now(UTC) - 5 * DAY).date().isoformat()
    later = sahay(
        "queue", "export", "--out", str(as_csv), "--format", "csv", "--since", since, "--database-url", database_url
    )
    assert later.exit_code == 0, later.output
    assert "wrote 0 decided item(s) decided since" in flat(later.output)
    assert audited(engine, "export")[-1].detail["since"] == f"{since}T00:00:00Z"
    assert as_csv.read_text(encoding="utf-8").splitlines() == ["id,text,label,lang,surface"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["queue", "purge", "--retention-days", "0"],
            "Invalid value for '--retention-days': Input should be greater than or equal to 1",
        ),
        (["queue", "purge", "--retention-days", "soon"], "Invalid value for '--retention-days'"),
        (["queue", "purge", "--database-url", "not a url"], "not a database URL"),
        (["queue", "purge", "--database-url", "nosuchdb://h/db"], "unknown database kind"),
        (["queue", "export"], "Missing option '--out'"),
        (["queue", "export", "--out", "x.txt"], "must end in .jsonl or .csv"),
        (["queue", "export", "--out", "x.jsonl", "--format", "csv"], "does not match the suffix"),
        (["queue", "export", "--out", "x.jsonl", "--format", "xml"], "'xml' is not one of 'jsonl', 'csv'"),
        (["queue", "export", "--out", "x.jsonl", "--since", "last tuesday"], "is not a date or time"),
    ],
)
def test_bad_options_exit_2_with_a_message(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written anywhere but here
    result = sahay(*args, env={"SAHAY_DATABASE_URL": f"sqlite:///{tmp_path / 'q.db'}"})
    assert result.exit_code == 2, result.output
    assert message in flat(result.output)
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "x.txt").exists()


def test_a_bad_setting_in_the_environment_exits_2(tmp_path):
    result = sahay(
        "queue", "purge", env={"SAHAY_RETENTION_DAYS": "0", "SAHAY_DATABASE_URL": f"sqlite:///{tmp_path}/q.db"}
    )
    assert result.exit_code == 2 and "SAHAY_RETENTION_DAYS" in result.output


@pytest.mark.parametrize("command", [["purge"], ["export", "--out", "out.jsonl"]])
def test_an_unreachable_database_exits_1(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = "postgresql+psycopg://sahay:secret-pw@127.0.0.1:1/sahay?connect_timeout=3"
    result = sahay("queue", *command, "--database-url", url)
    assert result.exit_code == 1, result.output
    assert "cannot open database postgresql+psycopg://sahay:***@127.0.0.1:1/sahay" in flat(result.output)
    assert "secret-pw" not in result.output and not (tmp_path / "out.jsonl").exists()


def test_the_queue_command_is_no_longer_planned():
    result = sahay("queue", "--help")
    assert result.exit_code == 0 and "purge" in result.output and "export" in result.output
    assert "not available" not in result.output
