"""The Supabase store's way in: the supabase-py client, its two kinds of call (tables and
``rpc``) and how their errors become growthloop's (see :mod:`agent.store.supabase`)."""

from __future__ import annotations

from typing import Any

import httpx
from postgrest import APIError
from supabase import AsyncClient

from agent.errors import StoreError, StoreUnavailable

SCHEDULED = ["planned", "publishing", "posted", "dry_run"]  # queries.SCHEDULED_STATUSES
PAUSED_KEY = "paused"  # the runtime_state row of the kill switch
KEY_HINT = (
    "Use the project's service_role key (Supabase dashboard: Project Settings > API), not the "
    "anon key."
)


class SupabaseApi:
    """The client and the calls every Supabase store method makes."""

    def __init__(self, client: AsyncClient, http: httpx.AsyncClient, *, url: str) -> None:
        self._client = client
        self._http = http
        self.url = url

    async def close(self) -> None:
        await self._http.aclose()

    # -- the two ways in ---------------------------------------------------------------------

    async def _rpc(self, name: str, **params: Any) -> Any:
        """Call the PostgreSQL function ``name`` (one transaction) and return its JSON result."""
        response = await self._execute(self._client.rpc(name, params))
        return response.data

    async def _execute(self, builder: Any) -> Any:
        try:
            return await builder.execute()
        except APIError as exc:
            raise store_error(exc) from None
        except httpx.HTTPError as exc:
            raise StoreUnavailable(
                f"cannot reach Supabase at {self.url}: {type(exc).__name__}"
            ) from exc

    async def _rows(self, builder: Any) -> list[dict[str, Any]]:
        data = (await self._execute(builder)).data
        return list(data) if isinstance(data, list) else []

    async def _count(self, builder: Any) -> int:
        return int((await self._execute(builder)).count or 0)

    def _table(self, name: str) -> Any:
        return self._client.table(name)


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def batches(ids: list[int], size: int = 200) -> list[list[int]]:
    """Ids in chunks, so an ``in.(...)`` filter keeps the URL short."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def engagement(snap: dict[str, Any]) -> int:
    return sum(int(snap[k] or 0) for k in ("likes", "reposts", "replies", "quotes", "bookmarks"))


def int_or_none(value: Any) -> int | None:
    return int(value) if value is not None else None


def arm_value(field: str, value: Any) -> Any:
    if field == "posterior_family":
        return value
    column = {"posts", "likes_sum", "reposts_sum", "replies_sum", "impressions_sum"}
    return int(value) if field in column else float(value)


def store_error(exc: APIError) -> StoreError:
    """A PostgREST error object as a StoreError (the key is never part of it)."""
    if exc.code is None and (exc.message or "").lower().startswith("invalid api key"):
        return StoreError(
            "Supabase refused SUPABASE_SERVICE_ROLE_KEY (it was changed or revoked). " + KEY_HINT
        )
    detail = f"{exc.code}: {exc.message}" if exc.code else str(exc.message)
    if exc.details:
        detail += f" ({exc.details})"
    return StoreError(f"database error: {detail}".splitlines()[0])
