"""The Store on Supabase's REST API (PostgREST), through the supabase-py async client.

Selected when ``SUPABASE_URL`` and ``SUPABASE_SERVICE_ROLE_KEY`` are set and ``DATABASE_URL``
is not (``DATABASE_URL`` wins: a direct PostgreSQL connection is the faster, fuller backend).
Same semantics as :class:`agent.store.sql.SqlStore`, the reference implementation:

- plain reads and single-row writes go through ``client.table(...)`` with PostgREST filters;
  a write that must happen once carries its guard as a filter (``status=eq.draft``,
  ``taken_at=is.null``) exactly like the SQL store's WHERE clause;
- everything that must be atomic (the publish compare-and-sets, recording a publish with its due
  snapshots, a learning update, claiming due snapshots, leases) and the reads PostgREST's filters
  cannot express (joins, aggregates) are PostgreSQL functions created by migration 0005 and
  called through ``client.rpc(...)``: one call, one transaction.

The schema is created by ``growthloop migrate`` over ``DATABASE_URL`` (Supabase's connection
string) or by pasting ``growthloop migrate --sql`` into Supabase's SQL editor; this backend only
checks that it is current. The service-role key is sent in the ``apikey`` and ``Authorization``
headers and nowhere else: it is never logged nor put in an error message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from postgrest.types import ReturnMethod
from supabase import AsyncClientOptions, acreate_client

from agent.errors import ConfigError, SchemaOutOfDate, StoreError
from agent.models import (
    AccountInfo,
    ArmStat,
    Attribution,
    DueSnapshot,
    NewContent,
    Post,
    PostMetrics,
    PostStatus,
)
from agent.store.migrate import head_revision
from agent.store.rows import ARM_FIELDS
from agent.store.supabase_api import KEY_HINT, PAUSED_KEY, json_body
from agent.store.supabase_reads import SupabaseReads
from agent.store.supabase_rows import (
    due_snapshot,
    iso,
    post,
)

EXPIRED_DRAFT_ERROR = "expired unapproved"  # as agent.store.sql.EXPIRED_DRAFT_ERROR
DEFAULT_TIMEOUT = 30.0  # seconds, per HTTP request to the API


class SupabaseStore(SupabaseReads):
    """growthloop's store on a Supabase project, through its REST API."""

    backend = "supabase"

    @classmethod
    async def connect(
        cls,
        url: str,
        service_key: str,
        *,
        wait: float = 0.0,
        request_timeout: float = DEFAULT_TIMEOUT,
    ) -> SupabaseStore:
        """Open the API client and check the key and the schema revision.

        A URL that cannot be reached is retried for up to ``wait`` seconds. A wrong URL or key is
        a :class:`ConfigError` naming the variable to fix; a schema that is missing or behind is
        :class:`SchemaOutOfDate`.
        """
        url = url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                "SUPABASE_URL must be your project's URL, like https://<project>.supabase.co; "
                "the value set does not start with https://."
            )
        if not service_key.strip():
            raise ConfigError("SUPABASE_SERVICE_ROLE_KEY is empty. " + KEY_HINT)
        http = httpx.AsyncClient(timeout=request_timeout, follow_redirects=True)
        try:
            options = AsyncClientOptions(
                httpx_client=http,
                postgrest_client_retry=False,  # retries are the daemon's (next tick)
                auto_refresh_token=False,
                persist_session=False,
            )
            client = await acreate_client(url, service_key, options=options)
            store = cls(client, http, url=url)
            await store._check(service_key, wait=wait)
        except BaseException:
            await http.aclose()
            raise
        return store

    async def _check(self, service_key: str, *, wait: float) -> None:
        headers = {"apikey": service_key, "Authorization": f"Bearer {service_key}"}
        deadline = asyncio.get_running_loop().time() + wait
        delay = 0.5
        while True:
            try:
                response = await self._http.get(
                    f"{self.url}/rest/v1/alembic_version",
                    params={"select": "version_num"},
                    headers=headers,
                )
                break
            except httpx.HTTPError as exc:
                if asyncio.get_running_loop().time() + delay > deadline:
                    raise ConfigError(
                        f"Cannot reach Supabase at SUPABASE_URL ({self.url}): "
                        f"{type(exc).__name__}. Check SUPABASE_URL (your project's URL, "
                        "https://<project>.supabase.co) and that the project is not paused."
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        if response.status_code in (401, 403):
            raise ConfigError(
                f"Supabase at SUPABASE_URL ({self.url}) refused SUPABASE_SERVICE_ROLE_KEY "
                f"(HTTP {response.status_code}). " + KEY_HINT
            )
        body = json_body(response)
        if response.status_code == 404 and isinstance(body, dict) and body.get("code"):
            raise SchemaOutOfDate(
                "The Supabase database has no growthloop schema yet. Apply the migrations: "
                "`growthloop migrate` with DATABASE_URL set to the project's connection string, "
                "or paste the output of `growthloop migrate --sql` into Supabase's SQL editor."
            )
        if response.status_code != 200 or not isinstance(body, list):
            raise ConfigError(
                f"SUPABASE_URL ({self.url}) answered HTTP {response.status_code} where a "
                "Supabase project's REST API was expected; check SUPABASE_URL."
            )
        current = body[0].get("version_num") if body else None
        head = head_revision()
        if current != head:
            where = "is empty" if current is None else f"is at revision {current}"
            raise SchemaOutOfDate(
                f"The Supabase database {where}, but this version of growthloop needs revision "
                f"{head}. Run `growthloop migrate` with DATABASE_URL set to the project's "
                "connection string, or paste `growthloop migrate --sql` into the SQL editor."
            )

    # -- accounts -----------------------------------------------------------------------------

    async def ensure_account(
        self, *, name: str, platform: str, handle: str | None, now: datetime
    ) -> int:
        created_at = iso(now)
        for _ in range(3):
            found = await self._rows(
                self._table("accounts")
                .update({"platform": platform, "handle": handle})
                .eq("name", name)
                .select("id")
            )
            if found:
                return int(found[0]["id"])
            row = {"name": name, "platform": platform, "handle": handle, "created_at": created_at}
            made = await self._rows(
                self._table("accounts")
                .upsert(row, on_conflict="name", ignore_duplicates=True)
                .select("id")
            )
            if made:
                return int(made[0]["id"])
        raise StoreError(f"could not create or find the account {name!r}")

    # -- content ------------------------------------------------------------------------------

    async def add_content(self, new: NewContent, *, now: datetime) -> Post:
        row = {
            "account_id": new.account_id,
            "status": new.status.value,
            "text": new.text,
            "text_hash": new.text_hash,
            "generation_metadata": new.generation_metadata,
            "scheduled_for": iso(new.scheduled_for),
            "idempotency_key": new.idempotency_key,
            "error": new.error,
            "created_at": iso(now),
            "updated_at": iso(now),
        }
        [made] = await self._rows(self._table("content").insert(row).select("*"))
        return post(made)

    async def begin_publish(self, content_id: int, *, now: datetime) -> bool:
        """planned -> publishing, committed before the platform is called (step 1)."""
        return bool(
            await self._rpc("growthloop_begin_publish", p_content_id=content_id, p_now=iso(now))
        )

    async def finish_publish(
        self,
        content_id: int,
        *,
        platform_post_id: str,
        posted_at: datetime,
        horizons: Sequence[timedelta],
        now: datetime,
    ) -> bool:
        """publishing -> posted, with the due snapshot rows, in one transaction (step 3)."""
        return bool(
            await self._rpc(
                "growthloop_finish_publish",
                p_content_id=content_id,
                p_platform_post_id=platform_post_id,
                p_posted_at=iso(posted_at),
                p_horizon_seconds=[h.total_seconds() for h in horizons],
                p_now=iso(now),
            )
        )

    async def fail_publish(
        self,
        content_id: int,
        *,
        error: str,
        now: datetime,
        status: PostStatus = PostStatus.FAILED,
    ) -> None:
        await self._rpc(
            "growthloop_fail_publish",
            p_content_id=content_id,
            p_error=error[:2000],
            p_now=iso(now),
            p_status=status.value,
        )

    async def reschedule(
        self,
        content_id: int,
        *,
        scheduled_for: datetime,
        error: str,
        now: datetime,
        sent: bool = True,
    ) -> None:
        """Back to planned, at a later time (``sent=False`` gives the attempt back)."""
        await self._rpc(
            "growthloop_reschedule",
            p_content_id=content_id,
            p_scheduled_for=iso(scheduled_for),
            p_error=error[:2000],
            p_now=iso(now),
            p_sent=sent,
        )

    # -- polling ------------------------------------------------------------------------------

    async def claim_snapshots(
        self, now: datetime, *, worker: str, lease: timedelta, limit: int = 500
    ) -> list[DueSnapshot]:
        """Claim up to ``limit`` due snapshots for ``worker`` until ``now + lease``."""
        rows = await self._rpc(
            "growthloop_claim_snapshots",
            p_now=iso(now),
            p_worker=worker,
            p_lease_seconds=lease.total_seconds(),
            p_limit=limit,
        )
        return [due_snapshot(r) for r in rows]

    async def record_snapshot(
        self,
        snapshot_id: int,
        metrics: PostMetrics | None,
        *,
        taken_at: datetime,
        hours_since_post: float,
        followers_at: int | None,
        error: str | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "taken_at": iso(taken_at),
            "hours_since_post": hours_since_post,
            "followers_at": followers_at,
            "error": error,
            "claimed_by": None,  # taken: the claim has done its job
            "claimed_until": None,
        }
        if metrics is not None:
            values.update(
                likes=metrics.likes,
                reposts=metrics.reposts,
                replies=metrics.replies,
                quotes=metrics.quotes,
                bookmarks=metrics.bookmarks,
                impressions=metrics.impressions,
                profile_clicks=metrics.profile_clicks,
                url_clicks=metrics.url_clicks,
                engagement_rate=(
                    metrics.engagements / metrics.impressions if metrics.impressions else None
                ),
            )
        await self._execute(
            self._table("performance_snapshots")
            .update(values, returning=ReturnMethod.minimal)
            .eq("id", snapshot_id)
            .is_("taken_at", None)
        )

    async def add_account_snapshot(
        self, account_id: int, info: AccountInfo, *, taken_at: datetime
    ) -> None:
        row = {
            "account_id": account_id,
            "taken_at": iso(taken_at),
            "followers": info.followers,
            "following": info.following,
            "posts": info.posts,
        }
        await self._execute(
            self._table("account_snapshots").insert(row, returning=ReturnMethod.minimal)
        )

    # -- attribution and learning -------------------------------------------------------------

    async def add_attribution(self, attribution: Attribution, *, now: datetime) -> None:
        row = {
            "content_id": attribution.content_id,
            "attribution_method": attribution.attribution_method,
            "window_hours": attribution.window_hours,
            "followers_before": attribution.followers_before,
            "followers_after": attribution.followers_after,
            "followers_gained": attribution.followers_gained,
            "confidence_score": attribution.confidence_score,
            "inputs": attribution.inputs,
            "created_at": iso(now),
        }
        await self._execute(
            self._table("follower_attributions").insert(row, returning=ReturnMethod.minimal)
        )

    async def apply_learning(
        self,
        *,
        account_id: int,
        content_id: int,
        stats: Sequence[ArmStat],
        evidence: dict[str, Any],
        updates_applied: dict[str, Any],
        insights_summary: dict[str, Any],
        now: datetime,
    ) -> bool:
        """Arm statistics, the learning_updates row and the post marked learned, in one call.

        Returns False (and writes nothing) when the post was already learned from.
        """
        payload = [
            {"account_id": s.account_id, "dimension": s.dimension, "arm": s.arm}
            | {f: getattr(s, f) for f in ARM_FIELDS}
            for s in stats
        ]
        return bool(
            await self._rpc(
                "growthloop_apply_learning",
                p_account_id=account_id,
                p_content_id=content_id,
                p_stats=payload,
                p_evidence=evidence,
                p_updates_applied=updates_applied,
                p_insights_summary=insights_summary,
                p_now=iso(now),
            )
        )

    # -- several workers: leases --------------------------------------------------------------

    async def acquire_lease(self, name: str, *, worker: str, now: datetime, ttl: timedelta) -> bool:
        """Take, renew or take over the lease ``name``; False while another worker holds it."""
        return bool(
            await self._rpc(
                "growthloop_acquire_lease",
                p_name=name,
                p_worker=worker,
                p_now=iso(now),
                p_ttl_seconds=ttl.total_seconds(),
            )
        )

    async def release_lease(self, name: str, *, worker: str) -> None:
        """Give the lease up, if ``worker`` holds it."""
        await self._rpc("growthloop_release_lease", p_name=name, p_worker=worker)

    # -- runtime state (the kill switch) ------------------------------------------------------

    async def set_paused(self, paused: bool, *, reason: str, by: str, now: datetime) -> None:
        """Pause or resume publishing for every worker on this database (an upsert)."""
        row = {
            "key": PAUSED_KEY,
            "value": {"paused": paused, "reason": reason},
            "updated_at": iso(now),
            "updated_by": by,
        }
        await self._execute(
            self._table("runtime_state").upsert(
                row, on_conflict="key", returning=ReturnMethod.minimal
            )
        )

    # -- health -------------------------------------------------------------------------------

    async def write_health(self, row: dict[str, Any]) -> None:
        """One row per (hour, account): a second write of the same hour is ignored."""
        values = {k: iso(v) if isinstance(v, datetime) else v for k, v in row.items()}
        await self._execute(
            self._table("system_health_metrics").upsert(
                values,
                on_conflict="hour_start,account_id",
                ignore_duplicates=True,
                returning=ReturnMethod.minimal,
            )
        )

    # -- approval queue (approve mode) --------------------------------------------------------

    async def approve_draft(
        self, content_id: int, *, now: datetime, scheduled_for: datetime | None = None
    ) -> bool:
        """draft -> planned, due at the later of ``now`` and ``scheduled_for`` (default: its own
        slot). False when the post is not (or no longer) a draft."""
        return bool(
            await self._rpc(
                "growthloop_approve_draft",
                p_content_id=content_id,
                p_now=iso(now),
                p_scheduled_for=iso(scheduled_for) if scheduled_for is not None else None,
            )
        )

    async def _update_draft(self, content_id: int, values: dict[str, Any]) -> bool:
        rows = await self._rows(
            self._table("content")
            .update(values)
            .eq("id", content_id)
            .eq("status", PostStatus.DRAFT.value)
            .select("id")
        )
        return len(rows) == 1

    async def reject_draft(self, content_id: int, *, reason: str, now: datetime) -> bool:
        """draft -> rejected (never sent). False when the post is not a draft."""
        values = {
            "status": PostStatus.REJECTED.value,
            "error": reason[:2000],
            "updated_at": iso(now),
        }
        return await self._update_draft(content_id, values)

    async def edit_draft(
        self, content_id: int, *, text: str, text_hash: str, now: datetime
    ) -> bool:
        """Replace a draft's text (the caller has checked it). False when it is not a draft."""
        values = {"text": text, "text_hash": text_hash, "updated_at": iso(now)}
        return await self._update_draft(content_id, values)

    async def expire_drafts(self, older_than: datetime, now: datetime) -> int:
        """Reject every draft created before ``older_than``; returns how many."""
        rows = await self._rows(
            self._table("content")
            .update(
                {
                    "status": PostStatus.REJECTED.value,
                    "error": EXPIRED_DRAFT_ERROR,
                    "updated_at": iso(now),
                }
            )
            .eq("status", PostStatus.DRAFT.value)
            .lt("created_at", iso(older_than))
            .select("id")
        )
        return len(rows)
