"""What every `growthloop` command shares: the consoles, the ``--config`` option, loading the
config, and turning the errors a user can fix into one paragraph and an exit code.

Errors a user can fix (bad config, missing secret, unwritable data directory, schema behind the
code, a database that refuses the role, password or database name, a port in use) print one
paragraph and exit with code 2; a database that cannot be reached prints one paragraph and exits
with code 1. Nothing prints a traceback for them (``guarded``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from agent.config import Config, load_config
from agent.errors import ConfigError, GrowthloopError, SchemaOutOfDate, StoreError, StoreRefused

# Off a terminal (pipes, logs, CI) rich would wrap tables at 80 columns.
out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="GROWTHLOOP_CONFIG",
        help="Config file; relative paths in it are relative to its folder (default: the "
        "built-in example config, data in ./data/).",
        show_envvar=True,
    ),
]


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]growthloop:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(run: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine; user-fixable errors become a paragraph and exit code 2, a database
    that cannot be reached or fails exit code 1."""
    try:
        return asyncio.run(run())
    except (ConfigError, SchemaOutOfDate, StoreRefused) as exc:
        fail(str(exc), 2)
    except StoreError as exc:
        fail(f"The database could not be used: {exc}", 1)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    raise AssertionError("unreachable")


def load(path: Path | None) -> Config:
    """The config at ``path`` (the built-in one when None); a bad file exits with code 2."""
    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc), 2)
        raise


def with_store(
    cfg: Config,
    work: Callable[[Any], Coroutine[Any, Any, T]],
    *,
    refusals: tuple[type[GrowthloopError], ...] = (),
) -> T:
    """Run ``work(store)`` on the config's store (no lock: safe while daemons run); the
    ``refusals`` (a draft or post the command cannot act on) print and exit with code 2."""
    from agent.bootstrap import open_store, store_url

    async def go() -> T:
        store = await open_store(store_url(cfg), auto_migrate=False)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return guarded(go)
    except refusals as exc:
        fail(str(exc), 2)
        raise
