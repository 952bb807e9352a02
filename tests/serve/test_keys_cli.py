"""`sahay keys create | list | revoke` (the Typer sub-app, as `sahay keys` runs it)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from serve.db import make_engine
from serve.keys import KeyStore
from serve.keys_commands import keys_app

KEY = re.compile(r"^sahay_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")
runner = CliRunner()


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/var/sahay.db"


@pytest.fixture
def store(url):
    engine = make_engine(url)
    yield KeyStore(engine, cache_ttl=0)
    engine.dispose()


def keys(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(keys_app, list(args), env=env)


def flat(text: str) -> str:
    """Rich error panels wrap and frame; the words, joined by single spaces."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_create_prints_a_key_that_verifies(url, store):
    result = keys("create", "--role", "service", "--name", "web-app", "--database-url", url)
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert KEY.match(key), result.stdout  # stdout holds the key alone: KEY=$(sahay keys create ...)
    assert "not shown again" in result.stderr
    assert key.split("_")[1] in result.stderr and key not in result.stderr
    record = store.verify(key)
    assert record is not None and (record.role, record.name) == ("service", "web-app")


def test_list_shows_keys_but_no_secrets(url):
    created = [
        keys("create", "--role", role, "--name", f"n-{role}", "--database-url", url).stdout.strip()
        for role in ("service", "moderator", "admin")
    ]
    result = keys("list", "--database-url", url)
    assert result.exit_code == 0, result.output
    for key in created:
        key_id, secret = key.split("_", 2)[1:]
        assert key_id in result.stdout
        assert secret not in result.output and secret[:8] not in result.output
    assert "sahay_" not in result.output
    for word in ("service", "moderator", "admin", "n-admin", "active"):
        assert word in result.stdout


def test_list_when_empty(url):
    result = keys("list", "--database-url", url)
    assert result.exit_code == 0 and "no API keys yet" in result.stdout


def test_revoke(url, store):
    key = keys("create", "--role", "admin", "--name", "ops", "--database-url", url).stdout.strip()
    key_id = key.split("_")[1]
    result = keys("revoke", key_id, "--database-url", url)
    assert result.exit_code == 0, result.output
    assert f"revoked key {key_id}" in result.stdout
    assert store.verify(key) is None
    assert "revoked" in keys("list", "--database-url", url).stdout


def test_revoke_unknown_key_exits_1(url):
    result = keys("revoke", "0123456789ab", "--database-url", url)
    assert result.exit_code == 1
    assert "error: no API key with id '0123456789ab'" in result.stderr


def test_bad_role_exits_2_with_message(url):
    result = keys("create", "--role", "root", "--name", "x", "--database-url", url)
    assert result.exit_code == 2
    message = flat(result.output)
    assert "Invalid value for '--role'" in message and "'root' is not one of" in message
    assert "'service', 'moderator', 'admin'" in message


def test_missing_name_exits_2(url):
    result = keys("create", "--role", "service", "--database-url", url)
    assert result.exit_code == 2 and "--name" in flat(result.output)


def test_bad_name_exits_2_with_message(url):
    result = keys("create", "--role", "service", "--name", "  ", "--database-url", url)
    assert result.exit_code == 2
    assert "error: the key needs a name" in result.stderr


def test_bad_database_url_exits_2():
    result = keys("list", "--database-url", "nosuchdb://x/y")
    assert result.exit_code == 2
    assert "error: unknown database kind 'nosuchdb'" in result.stderr


def test_database_that_cannot_be_opened_exits_1(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    result = keys("list", "--database-url", f"sqlite:///{tmp_path}/file/sahay.db")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot open database sqlite:///")


def test_database_url_from_the_environment(url, store):
    result = keys("create", "--role", "moderator", "--name", "asha", env={"SAHAY_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert store.verify(result.stdout.strip()).role == "moderator"


def test_default_database_is_var_sahay_db_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SAHAY_DATABASE_URL", raising=False)
    result = keys("create", "--role", "admin", "--name", "first")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "var" / "sahay.db").is_file()


def test_help_lists_the_commands_and_roles():
    result = keys("--help")
    assert result.exit_code == 0
    for word in ("create", "list", "revoke"):
        assert word in result.stdout
    assert "service|moderator|admin" in flat(keys("create", "--help").stdout)
