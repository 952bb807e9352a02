"""API keys: the store (hashes only), the database (WAL, migrations), the auth dependency and the admin routes."""

from __future__ import annotations

import hashlib
import io
import re
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from serve.admin_api import KeyCreate
from serve.admin_api import router as admin_router
from serve.auth import require_role
from serve.db import alembic_config, make_engine, migrate
from serve.keys import KeyRecord, KeyStore, UnknownKeyError, create_key
from serve.tables import ROLES, ApiKey, Base

KEY = re.compile(r"^sahay_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "var" / "keys.db"


@pytest.fixture
def engine(db_path):
    engine = make_engine(f"sqlite:///{db_path}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine) -> KeyStore:
    return KeyStore(engine)


def _secret(key: str) -> str:
    return key.split("_", 2)[2]


# --- the store -------------------------------------------------------------------------------------------------


def test_create_returns_a_key_that_verifies(store):
    record, key = store.create("service", "web-app")
    assert KEY.match(key)
    assert key.split("_")[1] == record.key_id
    assert (record.role, record.name, record.active) == ("service", "web-app", True)
    assert record.created_at.tzinfo is not None and record.created_at.utcoffset().total_seconds() == 0
    verified = store.verify(key)
    assert verified is not None and verified.key_id == record.key_id and verified.role == "service"


def test_each_key_is_new(store):
    keys = [store.create("service", f"app-{i}")[1] for i in range(5)]
    assert len(set(keys)) == 5
    assert len({k.split("_")[1] for k in keys}) == 5


@pytest.mark.parametrize("role", ROLES)
def test_every_role_can_be_created(store, role):
    record, key = store.create(role, "x")
    assert store.verify(key).role == role == record.role


def test_wrong_keys_fail(store):
    _, key = store.create("admin", "ops")
    _, other = store.create("admin", "ops2")
    key_id, secret = key.split("_")[1], _secret(key)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    wrong = [
        f"sahay_{key_id}_{flipped}",  # right id, wrong secret
        f"sahay_{key_id}_{_secret(other)}",  # right id, another key's secret
        f"sahay_{'0' * 12}_{secret}",  # unknown id
        key + "x",
        key[:-1],
        " " + key,
        key.upper(),
        "",
        "sahay",
        "Bearer " + key,
        secret,
        "x" * 10_000,
    ]
    for candidate in wrong:
        assert store.verify(candidate) is None, candidate
    assert store.verify(key) is not None


def test_revoked_key_fails_at_once_even_when_cached(store):
    record, key = store.create("moderator", "asha")
    assert store.verify(key) is not None  # now cached
    revoked = store.revoke(record.key_id)
    assert revoked.revoked_at is not None and not revoked.active
    assert store.verify(key) is None
    again = store.revoke(record.key_id)  # idempotent: keeps the first time
    assert again.revoked_at == revoked.revoked_at


def test_revocation_by_another_process_takes_effect_within_the_cache_ttl(engine):
    clock = FakeClock()
    server = KeyStore(engine, cache_ttl=5.0, clock=clock)
    record, key = server.create("service", "web")
    assert server.verify(key) is not None
    KeyStore(engine).revoke(record.key_id)  # e.g. `sahay keys revoke` in another process
    clock.now += 4.9
    assert server.verify(key) is not None  # still cached
    clock.now += 0.2
    assert server.verify(key) is None


def test_cache_ttl_zero_checks_the_database_every_time(engine):
    server = KeyStore(engine, cache_ttl=0)
    record, key = server.create("service", "web")
    assert server.verify(key) is not None
    KeyStore(engine).revoke(record.key_id)
    assert server.verify(key) is None


def test_revoke_unknown_key(store):
    with pytest.raises(UnknownKeyError, match="no API key with id"):
        store.revoke("0123456789ab")
    with pytest.raises(UnknownKeyError, match="12 hex digits"):
        store.revoke("not-a-key-id")


def test_list_shows_records_without_secrets(store):
    a, key_a = store.create("service", "web")
    b, _ = store.create("admin", "ops")
    store.revoke(a.key_id)
    records = store.list()
    assert [r.key_id for r in records] == [a.key_id, b.key_id]
    assert [r.active for r in records] == [False, True]
    assert all(isinstance(r, KeyRecord) for r in records)
    assert not any(hasattr(r, "secret_hash") for r in records)
    assert _secret(key_a) not in repr(records)


@pytest.mark.parametrize(
    ("role", "name", "message"),
    [
        ("root", "x", "unknown role 'root': choose one of service, moderator, admin"),
        ("Admin", "x", "unknown role"),
        ("service", "   ", "needs a name"),
        ("service", "x" * 101, "longer than 100"),
        ("service", "a\nb", "control characters"),
    ],
)
def test_bad_input_is_refused_clearly(store, role, name, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        store.create(role, name)
    assert store.list() == []


def test_last_used_is_recorded(store):
    record, key = store.create("service", "web")
    assert record.last_used_at is None
    before = datetime.now(UTC)
    used = store.verify(key)
    assert used.last_used_at is not None and used.last_used_at >= before
    assert store.get(record.key_id).last_used_at == used.last_used_at


def test_verify_from_many_threads(store):
    _, key = store.create("service", "web")
    results: list[KeyRecord | None] = []

    def work() -> None:
        for _ in range(20):
            results.append(KeyStore(store.engine, cache_ttl=0).verify(key))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 160 and all(r is not None for r in results)


# --- what is stored --------------------------------------------------------------------------------------------


def test_only_a_hash_is_stored(store, db_path):
    keys = [store.create(role, f"k-{role}")[1] for role in ROLES]
    for key in keys:
        store.verify(key)
    store.engine.dispose()
    raw = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))  # the db, -wal and -shm
    dump = "\n".join(sqlite3.connect(db_path).iterdump())
    for key in keys:
        secret = _secret(key)
        assert secret.encode() not in raw and key.encode() not in raw
        assert secret not in dump
        assert hashlib.sha256(key.encode()).hexdigest() in dump
    with store.engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("api_keys")}
    assert not {"secret", "key", "plaintext"} & columns


def test_api_key_repr_never_shows_the_hash(store):
    _, key = store.create("service", "web")
    digest = hashlib.sha256(key.encode()).hexdigest()
    row = ApiKey(key_id="abc", secret_hash=digest, role="service", name="web")
    assert digest not in repr(row)


def test_datetimes_are_stored_in_utc(store):
    record, _ = store.create("service", "web")
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT created_at FROM api_keys")).scalar_one()
    assert str(stored).startswith(record.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"))
    with pytest.raises(Exception, match="naive datetime"), store.engine.begin() as conn:
        conn.execute(ApiKey.__table__.update().values(revoked_at=datetime(2026, 1, 1)))


# --- the database ----------------------------------------------------------------------------------------------


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_busy_timeout(engine, db_path):
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    assert sqlite3.connect(db_path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # kept in the file


def test_parent_directory_is_created(tmp_path):
    url = f"sqlite:///{tmp_path}/a/b/c/sahay.db"
    migrate(url)
    assert (tmp_path / "a" / "b" / "c" / "sahay.db").is_file()


def test_migrations_are_idempotent(db_path):
    url = f"sqlite:///{db_path}"
    migrate(url)
    key = create_key(url, "admin", "ops")  # migrates again
    migrate(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == ["0004"]
            assert set(inspect(conn).get_table_names()) == {
                "alembic_version",
                "api_keys",
                "queue_items",
                "audit_events",
                "webhook_outbox",
            }
        assert KeyStore(engine).verify(key).role == "admin"
    finally:
        engine.dispose()


def test_concurrent_first_migrations_take_turns(tmp_path):
    url = f"sqlite:///{tmp_path}/race.db"
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert KEY.match(create_key(url, "service", "after-race"))


def test_migrations_match_the_models(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_in_memory_database_is_one_database_across_threads():
    engine = make_engine("sqlite://")
    migrate(engine)
    store = KeyStore(engine, cache_ttl=0)
    _, key = store.create("service", "web")
    found: list[KeyRecord | None] = []
    t = threading.Thread(target=lambda: found.append(store.verify(key)))
    t.start()
    t.join()
    assert found[0] is not None


def test_migrations_render_for_postgresql():
    buf = io.StringIO()
    config = alembic_config("postgresql+psycopg://sahay:p%40ss@db.example/sahay")
    config.output_buffer = buf
    from alembic import command

    command.upgrade(config, "head", sql=True)
    sql = buf.getvalue()
    assert "CREATE TABLE api_keys" in sql and "TIMESTAMP WITH TIME ZONE" in sql
    assert "CREATE TABLE queue_items" in sql and "CREATE TABLE audit_events" in sql
    assert "CREATE TABLE webhook_outbox" in sql
    assert "JSON" in sql and "UNIQUE (item_id, model_version)" in sql


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "not a database URL: 'not a url'"),
        ("nosuchdb://x/y", "unknown database kind 'nosuchdb'"),
        ("postgresql+nosuchdriver://h/db", "unknown database kind 'postgresql+nosuchdriver'"),
    ],
)
def test_bad_database_url_is_a_clear_error(url, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make_engine(url)


def test_missing_driver_is_a_clear_error(monkeypatch):
    import sys

    # The dev install has psycopg: hide both drivers so the import fails as on a core install.
    for name in ("psycopg", "psycopg2"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ValueError, match=r"no driver for 'postgresql' \(psycopg2? is not installed\)"):
        make_engine("postgresql://sahay@localhost/sahay")


def test_bad_url_message_hides_the_password():
    with pytest.raises(ValueError, match="not a database URL") as info:
        make_engine("post gres://user:hunter2@host/db")
    assert "hunter2" not in str(info.value)


def test_create_key_helper(tmp_path):
    url = f"sqlite:///{tmp_path}/helper.db"
    key = create_key(url, "service", "fixture")
    engine = make_engine(url)
    try:
        assert KeyStore(engine).verify(key).name == "fixture"
    finally:
        engine.dispose()


# --- the auth dependency and the admin routes (a small app; real-server tests live with the app) ----------------


@pytest.fixture
def app_and_keys(store):
    app = FastAPI()
    app.state.keystore = store
    app.include_router(admin_router)

    @app.post("/classify")
    async def classify(key: KeyRecord = Depends(require_role("service"))) -> dict:
        return {"key_id": key.key_id, "role": key.role}

    @app.get("/queue")
    def queue(key: KeyRecord = Depends(require_role("moderator"))) -> dict:
        return {"role": key.role}

    keys = {role: store.create(role, f"test-{role}")[1] for role in ROLES}
    return app, keys


@pytest.fixture
def http(app_and_keys):
    with TestClient(app_and_keys[0]) as client:
        yield client


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_missing_key_is_401_with_a_challenge(http):
    r = http.post("/classify")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "missing API key" in r.json()["detail"] and "Authorization: Bearer" in r.json()["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer sahay_0123456789ab_" + "A" * 43},
        {"Authorization": "Bearer nonsense"},
        {"X-API-Key": "nonsense"},
    ],
)
def test_unknown_key_is_401(http, headers):
    r = http.post("/classify", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["detail"] == "invalid API key: it is unknown or has been revoked"


def test_wrong_scheme_is_401_saying_how(http, app_and_keys):
    key = app_and_keys[1]["service"]
    r = http.post("/classify", headers={"Authorization": f"Basic {key}"})
    assert r.status_code == 401 and "must read 'Bearer <key>'" in r.json()["detail"]
    assert key not in r.text


def test_revoked_key_is_401(http, app_and_keys, store):
    key = app_and_keys[1]["service"]
    assert http.post("/classify", headers=_bearer(key)).status_code == 200
    store.revoke(key.split("_")[1])
    r = http.post("/classify", headers=_bearer(key))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_right_role_passes_and_x_api_key_works(http, app_and_keys):
    keys = app_and_keys[1]
    r = http.post("/classify", headers=_bearer(keys["service"]))
    assert r.status_code == 200 and r.json()["role"] == "service"
    assert http.post("/classify", headers={"X-API-Key": keys["service"]}).status_code == 200
    assert http.post("/classify", headers={"authorization": f"bearer {keys['service']}"}).status_code == 200
    assert http.get("/queue", headers=_bearer(keys["moderator"])).json() == {"role": "moderator"}


def test_two_different_keys_are_refused(http, app_and_keys):
    keys = app_and_keys[1]
    r = http.post("/classify", headers={**_bearer(keys["service"]), "X-API-Key": keys["admin"]})
    assert r.status_code == 401 and "two different API keys" in r.json()["detail"]
    same = {**_bearer(keys["service"]), "X-API-Key": keys["service"]}
    assert http.post("/classify", headers=same).status_code == 200


def test_wrong_role_is_403_naming_the_role_needed(http, app_and_keys):
    keys = app_and_keys[1]
    r = http.post("/classify", headers=_bearer(keys["moderator"]))
    assert r.status_code == 403
    assert r.json()["detail"] == "this needs an API key with the role 'service' or 'admin'; this key has 'moderator'"
    assert http.get("/queue", headers=_bearer(keys["service"])).status_code == 403
    r = http.get("/v1/keys", headers=_bearer(keys["service"]))
    assert r.status_code == 403 and "'admin'" in r.json()["detail"]


def test_admin_may_do_everything(http, app_and_keys):
    admin = _bearer(app_and_keys[1]["admin"])
    assert http.post("/classify", headers=admin).status_code == 200
    assert http.get("/queue", headers=admin).status_code == 200
    assert http.get("/v1/keys", headers=admin).status_code == 200


def test_require_role_refuses_unknown_roles():
    with pytest.raises(ValueError, match="unknown role"):
        require_role("superuser")


def test_no_keystore_is_503():
    app = FastAPI()

    @app.get("/x")
    async def x(key: KeyRecord = Depends(require_role("service"))) -> dict:
        return {}

    with TestClient(app) as client:
        r = client.get("/x", headers=_bearer("sahay_0123456789ab_" + "A" * 43))
    assert r.status_code == 503


def test_admin_api_create_list_revoke(http, app_and_keys, store):
    admin = _bearer(app_and_keys[1]["admin"])
    r = http.post("/v1/keys", headers=admin, json={"role": "service", "name": "mobile-app"})
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    created = r.json()
    assert KEY.match(created["key"]) and created["role"] == "service" and created["active"] is True
    assert store.verify(created["key"]).key_id == created["key_id"]

    listed = http.get("/v1/keys", headers=admin)
    assert listed.status_code == 200
    body = listed.json()
    assert created["key_id"] in [k["key_id"] for k in body["keys"]]
    assert "sahay_" not in listed.text and _secret(created["key"]) not in listed.text
    assert all(
        set(k) == {"key_id", "role", "name", "active", "created_at", "revoked_at", "last_used_at"} for k in body["keys"]
    )

    r = http.delete(f"/v1/keys/{created['key_id']}", headers=admin)
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["revoked_at"]
    assert http.post("/classify", headers=_bearer(created["key"])).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"role": "root", "name": "x"},
        {"role": "service"},
        {"role": "service", "name": ""},
        {"role": "service", "name": "x", "secret": "mine"},
    ],
)
def test_admin_api_refuses_bad_input(http, app_and_keys, body):
    r = http.post("/v1/keys", headers=_bearer(app_and_keys[1]["admin"]), json=body)
    assert r.status_code == 422


def test_admin_api_control_characters_in_name_are_422_with_message(http, app_and_keys):
    r = http.post("/v1/keys", headers=_bearer(app_and_keys[1]["admin"]), json={"role": "service", "name": "a\u0007"})
    assert r.status_code == 422 and r.json()["detail"] == "name contains control characters"


def test_admin_api_revoke_unknown_or_malformed(http, app_and_keys):
    admin = _bearer(app_and_keys[1]["admin"])
    r = http.delete("/v1/keys/0123456789ab", headers=admin)
    assert r.status_code == 404 and "no API key with id" in r.json()["detail"]
    assert http.delete("/v1/keys/nope", headers=admin).status_code == 422


def test_admin_routes_need_a_key(http):
    assert http.get("/v1/keys").status_code == 401
    assert http.post("/v1/keys", json={"role": "admin", "name": "x"}).status_code == 401
    assert http.delete("/v1/keys/0123456789ab").status_code == 401


def test_roles_agree_everywhere():
    from typing import get_args

    assert get_args(KeyCreate.model_fields["role"].annotation) == ROLES == ("service", "moderator", "admin")


def test_openapi_declares_the_key_schemes(app_and_keys):
    schemes = app_and_keys[0].openapi()["components"]["securitySchemes"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schemes)
