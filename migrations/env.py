"""Alembic environment for growthloop.

growthloop drives Alembic programmatically (``agent/store/migrate.py``): it opens the connection
itself and hands it over in ``config.attributes["connection"]``, so migrations run on exactly the
database the daemon uses (SQLite file or ``DATABASE_URL``), sync or async. Offline mode
(``--sql``) renders the SQL for the URL in ``config.attributes["url"]``.
"""

from __future__ import annotations

from alembic import context

from agent.store.schema import metadata

config = context.config


def run_offline() -> None:
    context.configure(
        url=config.attributes.get("url") or config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `growthloop migrate`, not the alembic CLI")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
