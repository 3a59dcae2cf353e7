"""What a starting daemon says about where it runs: the store's kind and the deploy warnings.

Railway and Heroku are recognised by the variables they set in every process: ``DYNO`` (Heroku),
``RAILWAY_ENVIRONMENT`` / ``RAILWAY_PROJECT_ID`` (Railway, with ``RAILWAY_VOLUME_MOUNT_PATH``
when a volume is attached). Two set-ups work there but lose or fake everything:

- an account on the ``sandbox`` platform: the daemon posts to a simulation, not to a platform;
- an SQLite store on an ephemeral disk: a Heroku dyno's disk, or a Railway service's disk
  outside its volume, is wiped on every deploy and restart, and the history with it.

Pure functions of the config, the store URL and the environment; the daemon logs the result
(``daemon_started``'s ``store`` field and one ``deploy_warning`` event per problem). The store
URL itself is never logged: it may hold a password.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from agent.config import Config
from agent.store.lockfile import sqlite_file

HEROKU = ("DYNO",)
RAILWAY = ("RAILWAY_ENVIRONMENT", "RAILWAY_PROJECT_ID")
RAILWAY_VOLUME = "RAILWAY_VOLUME_MOUNT_PATH"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeployWarning:
    """One set-up that would lose data or post nowhere, and what to do about it."""

    kind: str  # "sandbox_deployed" | "sqlite_ephemeral"
    host: str  # "heroku" | "railway"
    message: str


def store_kind(url: str) -> str:
    """``sqlite``, ``postgresql``, ... (the URL's backend; never the URL, which may hold a
    password); ``unknown`` for something that is not a database URL."""
    try:
        return make_url(url).get_backend_name()
    except ArgumentError:
        return "unknown"


def hosting(environ: Mapping[str, str]) -> str | None:
    """``heroku``, ``railway`` or None (not on a recognised host)."""
    if any(environ.get(name) for name in HEROKU):
        return "heroku"
    if any(environ.get(name) for name in RAILWAY):
        return "railway"
    return None


def deploy_warnings(
    config: Config, *, store_url: str, environ: Mapping[str, str]
) -> list[DeployWarning]:
    """The deploy problems of this config on this host (only the Supabase one off Heroku and
    Railway)."""
    host = hosting(environ)
    found: list[DeployWarning] = []
    path = sqlite_file(store_url) if store_url else None  # "": a daemon given no store URL
    if path is not None and environ.get("SUPABASE_URL", "").strip():
        # SUPABASE_URL once selected a store that talked to Supabase's REST API (retired): the
        # data of someone who still relies on it would now go to a local file without a word
        found.append(
            DeployWarning(
                kind="supabase_not_the_store",
                host=host or "local",
                message=(
                    f"SUPABASE_URL is set but DATABASE_URL is not: the store is the SQLite file "
                    f"{path}, not Supabase's database (SUPABASE_URL and "
                    "SUPABASE_SERVICE_ROLE_KEY only serve `growthloop report --upload`). To keep "
                    "the data in Supabase, set DATABASE_URL to the project's connection string "
                    "(see docs/operations.md#supabase)."
                ),
            )
        )
    if host is None:
        return found
    sandboxed = [a.name for a in config.accounts if a.platform == "sandbox"]
    if sandboxed:
        found.append(
            DeployWarning(
                kind="sandbox_deployed",
                host=host,
                message=(
                    f"account(s) {', '.join(sandboxed)} use platform: sandbox, a simulation: "
                    f"nothing this {host} deployment posts reaches a real platform. Set each "
                    "account's platform (x, bluesky, mastodon, threads) and its credentials "
                    "(see docs/platforms.md)."
                ),
            )
        )
    if path is not None and _ephemeral(path, host, environ):
        volume = environ.get(RAILWAY_VOLUME)
        where = (
            "a Heroku dyno's disk is wiped on every deploy and restart"
            if host == "heroku"
            else (
                f"it is outside the Railway volume at {volume}"
                if volume
                else "no Railway volume is attached"
            )
            + ", and a service's own disk is wiped on every deploy"
        )
        found.append(
            DeployWarning(
                kind="sqlite_ephemeral",
                host=host,
                message=(
                    f"the store is the SQLite file {path}, and {where}: the posts, snapshots "
                    "and everything learned would be lost. Set DATABASE_URL to a PostgreSQL "
                    "database (e.g. Supabase's pooler connection string)"
                    f"{_volume_fix(host, environ)}."
                ),
            )
        )
    return found


def _volume_fix(host: str, environ: Mapping[str, str]) -> str:
    if host != "railway":
        return ""
    volume = environ.get(RAILWAY_VOLUME)
    if volume:
        return f", or point store.sqlite_path into the volume at {volume}"
    return ", or attach a volume and point store.sqlite_path into it"


def _ephemeral(path: Path, host: str, environ: Mapping[str, str]) -> bool:
    if host == "heroku":
        return True
    volume = environ.get(RAILWAY_VOLUME)
    if not volume:
        return True
    return not path.resolve().is_relative_to(Path(volume).resolve())
