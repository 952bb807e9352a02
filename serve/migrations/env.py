"""Alembic environment for Sahay. `serve.db.migrate()` passes an open connection in `config.attributes`;
`serve.db.alembic_config(url)` passes a URL instead (for `alembic revision --autogenerate` and offline SQL)."""

from __future__ import annotations

from alembic import context

from serve.db import make_engine
from serve.tables import Base

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table instead
        compare_type=True,
        **kwargs,
    )


def run_offline() -> None:
    """Emit the SQL for a URL without connecting (`alembic upgrade head --sql`)."""
    _configure(url=config.attributes["url"], literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    if "url" not in config.attributes:
        raise RuntimeError("no database: build the config with serve.db.alembic_config(url)")
    engine = make_engine(config.attributes["url"])
    try:
        with engine.connect() as connection:
            _configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
