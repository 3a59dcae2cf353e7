"""Sharing a report through Supabase Storage (``growthloop report --upload``,
docs/report.md#sharing-a-report).

The HTML goes into a **private** bucket (``report.bucket``, created private when missing; a bucket
found public is refused, never used) at ``reports/<account or all>/<UTC time>.html``, and a
signed URL that expires after ``report.signed_url_expiry`` (or ``--expires``) is handed back. All
of it goes through the ``supabase`` client (storage3 underneath) with the project's
``SUPABASE_URL`` and ``SUPABASE_SERVICE_ROLE_KEY``, read from the environment or ``.env`` only.

Supabase Storage serves ``text/html`` objects as ``text/plain`` (a guard against pages hosted on
its domain), so a browser opening the link would show the source. The link therefore carries
``download=<file name>``: Storage answers with ``Content-Disposition: attachment`` and the
browser saves the report, which opens offline (it is self-contained).

Errors, translated here (storage3 and httpx exceptions never leave this module):

=================================================  =========================================
what happened                                      raised
=================================================  =========================================
SUPABASE_URL or SUPABASE_SERVICE_ROLE_KEY missing  ConfigError (names both and where to find them)
SUPABASE_URL not an http(s) URL                    ConfigError
Storage answers 4xx (or 400 with a 4xx
``statusCode`` in its body, as it does)            ShareRefused (a key hint on 401/403/InvalidJWT)
the bucket exists and is public                    ShareRefused
Storage answers 5xx, network error, timeout        ShareUnavailable
=================================================  =========================================

The key never appears in a message: messages are built from Storage's answers and our names.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from storage3.exceptions import StorageApiError
from storage3.utils import StorageException
from supabase import AsyncClientOptions, SupabaseException, acreate_client

from agent.config import Secrets
from agent.errors import ConfigError, ShareRefused, ShareUnavailable
from agent.logs import redact_text

STORAGE_TIMEOUT = 30.0  # seconds for one Storage request: a report is ~0.1-2 MB
HTML_TYPE = "text/html; charset=utf-8"
WHERE_SETTINGS = (
    "the Supabase dashboard's Project Settings > API page: the project URL, "
    "https://<ref>.supabase.co, and the service_role key"
)
# what Storage's answers say when the key is not accepted: Supabase's gateway answers 401,
# Storage itself 400 with one of these codes or a 403 statusCode (row-level security)
KEY_CODES = {"InvalidJWT", "AccessDenied", "Unauthorized"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Shared:
    """Where a shared report went and the link that reads it until ``expires_at``."""

    bucket: str
    path: str
    url: str
    expires_at: datetime
    created_bucket: bool


def storage_settings(secrets: Secrets | None = None) -> tuple[str, str]:
    """``(SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY)`` from the environment or ``.env``; a
    ConfigError saying what to set when either is missing or the URL is not one."""
    secrets = Secrets() if secrets is None else secrets
    url = (secrets.supabase_url or "").strip()
    key_value = secrets.supabase_service_role_key
    key = key_value.get_secret_value().strip() if key_value is not None else ""
    missing = [
        name
        for name, value in (("SUPABASE_URL", url), ("SUPABASE_SERVICE_ROLE_KEY", key))
        if not value
    ]
    if missing:
        raise ConfigError(
            "--upload shares the report through Supabase Storage and needs SUPABASE_URL and "
            f"SUPABASE_SERVICE_ROLE_KEY in the environment or .env; missing: "
            f"{', '.join(missing)}. Both are on {WHERE_SETTINGS}. Without "
            "--upload the report is only written locally."
        )
    if not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError(
            "SUPABASE_URL must be the project's URL, https://<ref>.supabase.co "
            f"(see {WHERE_SETTINGS}); got {redact_text(url)!r}."
        )
    return url, key


def object_path(accounts: Sequence[str] | None, when: datetime) -> str:
    """``reports/<account or all>/<YYYYMMDDTHHMMSSZ>-<random>.html``: one object per upload
    (the random part: two uploads in one second must not collide; Storage refuses to
    overwrite)."""
    who = "all" if accounts is None else "-".join(accounts)
    who = re.sub(r"[^A-Za-z0-9_.-]+", "_", who)[:60] or "account"
    return f"reports/{who}/{when:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}.html"


async def share(
    body: bytes,
    *,
    filename: str,
    url: str,
    key: str,
    bucket: str,
    path: str,
    expires: timedelta,
    now: datetime,
    request_timeout: float = STORAGE_TIMEOUT,
) -> Shared:
    """Upload the report's HTML ``body`` to ``bucket``/``path`` (the bucket made private if
    missing) and sign a URL valid for ``expires`` (whole seconds, at least one) that downloads
    it as ``filename``."""
    seconds = int(expires.total_seconds())
    if seconds < 1:
        raise ConfigError(f"a signed URL must last at least 1s, got {expires.total_seconds():g}s")
    async with httpx.AsyncClient(timeout=request_timeout) as http:
        try:
            client = await acreate_client(url, key, options=AsyncClientOptions(httpx_client=http))
            storage = client.storage
            created = await _private_bucket(storage, bucket)
            files = storage.from_(bucket)
            await files.upload(path, body, {"content-type": HTML_TYPE, "upsert": "false"})
            signed = await files.create_signed_url(path, seconds, {"download": filename})
        except StorageApiError as exc:
            raise _translated(exc, bucket=bucket, path=path) from exc
        except httpx.HTTPError as exc:
            raise ShareUnavailable(
                f"Supabase Storage at {_host(url)} could not be reached: "
                f"{type(exc).__name__} {redact_text(str(exc))}".strip()
            ) from exc
        except SupabaseException as exc:
            raise ConfigError(f"SUPABASE_URL or SUPABASE_SERVICE_ROLE_KEY: {exc.message}") from exc
        except StorageException as exc:
            raise ShareUnavailable(f"Supabase Storage answered oddly: {exc}") from exc
    link = signed.get("signedURL") or signed.get("signedUrl")
    if not link:
        raise ShareUnavailable("Supabase Storage signed no URL for the report.")
    return Shared(
        bucket=bucket,
        path=path,
        url=link,
        expires_at=now + timedelta(seconds=seconds),
        created_bucket=created,
    )


async def _private_bucket(storage: Any, bucket: str) -> bool:
    """Make sure ``bucket`` exists and is private; True when it was created here."""
    try:
        found = await storage.get_bucket(bucket)
    except StorageApiError as exc:
        if str(exc.status) != "404":
            raise
        try:
            await storage.create_bucket(bucket, options={"public": False})
            return True
        except StorageApiError as again:
            if str(again.status) != "409":  # made meanwhile by someone else: look at it
                raise
            found = await storage.get_bucket(bucket)
    if found.public:
        raise ShareRefused(
            f"The Supabase Storage bucket {bucket!r} is public: anyone could read every report "
            "in it without a link. Make it private (dashboard: Storage, the bucket's Edit) or "
            "set report.bucket to another name (created private)."
        )
    return False


def _translated(exc: StorageApiError, *, bucket: str, path: str) -> ShareRefused | ShareUnavailable:
    status = str(exc.status)
    said = redact_text(f"{exc.message} ({exc.code}, {status})")
    if status.startswith("5"):
        return ShareUnavailable(f"Supabase Storage failed on {bucket}/{path}: {said}")
    hint = ""
    if status in {"401", "403"} or exc.code in KEY_CODES:
        hint = (
            " Check SUPABASE_SERVICE_ROLE_KEY: it must be the service_role key (not the anon "
            f"key) of the project at SUPABASE_URL (see {WHERE_SETTINGS})."
        )
    return ShareRefused(f"Supabase Storage refused to store {bucket}/{path}: {said}.{hint}")


def _host(url: str) -> str:
    return httpx.URL(url).host or url
