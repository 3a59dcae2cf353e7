"""A protocol test double for Supabase's REST API (PostgREST), on a real PostgreSQL database.

No PostgREST server can run on the machines growthloop is tested on, so the Supabase backend
(:mod:`agent.store.supabase`) is tested against this small aiohttp server instead. It speaks the
subset of the PostgREST protocol that supabase-py / postgrest-py actually send, and executes each
request on the real PostgreSQL database with parameterised SQL (identifiers are checked against
the catalog and quoted; values are always bind parameters).

**What it covers**

- ``GET``/``HEAD /rest/v1/<table or view>`` with ``select=*`` or a column list, the filters
  ``eq``, ``neq``, ``gt``, ``gte``, ``lt``, ``lte``, ``like``, ``ilike``, ``is`` (``null``,
  ``true``, ``false``), ``in.(...)`` (with PostgREST's quoting) and ``not.`` before any of them;
  ``order=col.asc|desc[.nullsfirst|nullslast],...``, ``limit``, ``offset``;
  ``Prefer: count=exact`` with ``Content-Range``; ``Accept: application/vnd.pgrst.object+json``
  (one object, else 406 ``PGRST116``).
- ``POST`` inserts of one object or an array (``columns=`` honoured, missing keys NULL as with
  PostgREST's default), upserts with ``Prefer: resolution=merge-duplicates|ignore-duplicates``
  and ``on_conflict=`` (default: the primary key), ``Prefer: return=representation|minimal``.
- ``PATCH`` and ``DELETE`` with the same filters, returning the rows or nothing.
- ``POST /rest/v1/rpc/<function>`` with named JSON arguments, each call one transaction: scalar,
  ``jsonb``, ``void``, ``SETOF`` and ``TABLE`` results rendered as PostgREST does.
- PostgREST error objects ``{"code", "message", "details", "hint"}`` from the database's
  SQLSTATE: 409 for unique and foreign-key violations (``23505``, ``23503``), 400 for other
  integrity, data and syntax errors, 404 ``PGRST205``/``PGRST202`` for an unknown table or
  function, 400 ``PGRST100`` for a request it cannot parse.
- The ``apikey`` header and ``Authorization: Bearer`` must both be the service key it was
  started with; anything else is a 401 like Supabase's API gateway gives.

**What it does not cover**: real authentication (JWTs, roles: every request runs as the role of
``database_url``, the tables' owner, so row-level security is never exercised here - the
migration tests check RLS directly), embedded resources (``select=a,b(*)``), ``or=``/``and=``
filters, column aliases and casts in ``select``, full-text search, range and array operators,
RPC filters on a function's result, functions with defaulted or variadic arguments,
``Prefer: missing=default``, pagination limits (``db-max-rows``), CSV, ``explain``, schemas other
than ``public``, the schema cache's reload notifications (it reloads on a miss), HTTP/2.

Use :func:`running_postgrest` (tests, ``bench/store.py``)::

    async with running_postgrest(database_url, service_key) as base_url:
        store = await SupabaseStore.connect(base_url, service_key)
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web

RESERVED = frozenset({"select", "order", "limit", "offset", "on_conflict", "columns"})
OPERATORS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
IS_VALUES = {"null": "NULL", "true": "TRUE", "false": "FALSE", "unknown": "UNKNOWN"}
SCHEMA = "public"


class PostgrestError(Exception):
    """An error answered as a PostgREST error object."""

    def __init__(
        self, status: int, code: str, message: str, details: str | None = None, hint: Any = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.hint = details, hint

    def response(self) -> web.Response:
        body = {"code": self.code, "message": self.message, "details": self.details}
        body["hint"] = self.hint
        return web.json_response(body, status=self.status)


def ident(name: str) -> str:
    """Quote an identifier (only ever called on names found in the catalog)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Function:
    name: str
    args: dict[str, str]  # argument name -> SQL type, in order
    returns: str  # the result type, as format_type gives it
    returns_set: bool
    returns_row: bool  # a composite (table, TABLE (...)) result


@dataclass
class Catalog:
    relations: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> column -> type
    primary_keys: dict[str, list[str]] = field(default_factory=dict)
    functions: dict[str, list[Function]] = field(default_factory=dict)

    @classmethod
    async def load(cls, conn: asyncpg.Connection) -> Catalog:
        catalog = cls()
        for row in await conn.fetch(
            """
            SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS type
            FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
            WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p')
              AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY c.relname, a.attnum
            """,
            SCHEMA,
        ):
            catalog.relations.setdefault(row["relname"], {})[row["attname"]] = row["type"]
        for row in await conn.fetch(
            """
            SELECT c.relname, array_agg(a.attname ORDER BY k.n) AS cols
            FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
            CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
            WHERE i.indisprimary AND c.relnamespace = $1::regnamespace
            GROUP BY c.relname
            """,
            SCHEMA,
        ):
            catalog.primary_keys[row["relname"]] = list(row["cols"])
        for row in await conn.fetch(
            """
            SELECT p.proname, p.proretset, format_type(p.prorettype, NULL) AS returns,
                   t.typtype = 'c' OR p.prorettype = 'record'::regtype AS returns_row,
                   coalesce(p.proargmodes::text[], '{}') AS modes,
                   coalesce(p.proargnames, '{}') AS names,
                   array(SELECT format_type(x, NULL)
                         FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) x)
                       AS types
            FROM pg_proc p JOIN pg_type t ON t.oid = p.prorettype
            WHERE p.pronamespace = $1::regnamespace AND p.prokind = 'f'
            """,
            SCHEMA,
        ):
            modes = list(row["modes"]) or ["i"] * len(row["types"])
            args = {
                name: type_
                for name, type_, mode in zip(row["names"], row["types"], modes, strict=False)
                if mode in ("i", "b")
            }
            catalog.functions.setdefault(row["proname"], []).append(
                Function(
                    name=row["proname"],
                    args=args,
                    returns=row["returns"],
                    returns_set=row["proretset"],
                    returns_row=row["returns_row"],
                )
            )
        return catalog


def split_list(value: str) -> list[str]:
    """The items of PostgREST's ``(a,"b,c",d)`` list syntax."""
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            current.append(char)
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return items


class Query:
    """Parameters of one SQL statement being built ($1, $2... in order)."""

    def __init__(self) -> None:
        self.params: list[Any] = []

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"


class PostgrestDouble:
    """The aiohttp application; see the module docstring for what it covers."""

    def __init__(self, pool: asyncpg.Pool, service_key: str) -> None:
        self.pool = pool
        self.service_key = service_key
        self.catalog = Catalog()
        self.app = web.Application(middlewares=[self._errors_and_auth])
        self.app.router.add_route("*", "/rest/v1/rpc/{name}", self.rpc)
        self.app.router.add_route("*", "/rest/v1/{name}", self.table)

    # -- plumbing ---------------------------------------------------------------------------

    @web.middleware
    async def _errors_and_auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        key = request.headers.get("apikey", "")
        bearer = request.headers.get("Authorization", "")
        if not (
            hmac.compare_digest(key.encode(), self.service_key.encode())
            and hmac.compare_digest(bearer.encode(), f"Bearer {self.service_key}".encode())
        ):
            return web.json_response(
                {
                    "message": "Invalid API key",
                    "hint": "Double check your Supabase `anon` or `service_role` API key.",
                },
                status=401,
            )
        for header in ("Accept-Profile", "Content-Profile"):
            if request.headers.get(header, SCHEMA) != SCHEMA:
                return PostgrestError(
                    406, "PGRST106", "The schema must be one of the following: public"
                ).response()
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except PostgrestError as exc:
            return exc.response()
        except asyncpg.PostgresError as exc:
            return database_error(exc).response()

    async def _relation(self, name: str) -> dict[str, str]:
        if name not in self.catalog.relations:
            async with self.pool.acquire() as conn:
                self.catalog = await Catalog.load(conn)
        if name not in self.catalog.relations:
            raise PostgrestError(
                404,
                "PGRST205",
                f"Could not find the table '{SCHEMA}.{name}' in the schema cache",
            )
        return self.catalog.relations[name]

    @staticmethod
    def _column(columns: dict[str, str], table: str, name: str) -> str:
        if name not in columns:
            raise PostgrestError(400, "42703", f"column {table}.{name} does not exist")
        return name

    @staticmethod
    def _prefer(request: web.Request) -> dict[str, str]:
        prefs: dict[str, str] = {}
        for header in request.headers.getall("Prefer", []):
            for item in header.split(","):
                key, _, value = item.strip().partition("=")
                if key:
                    prefs[key] = value
        return prefs

    # -- filters, select, order -------------------------------------------------------------

    def _where(self, request: web.Request, table: str, columns: dict[str, str], q: Query) -> str:
        clauses = []
        for key, raw in request.query.items():
            if key in RESERVED:
                continue
            if key in ("or", "and", "not.or", "not.and"):
                raise PostgrestError(400, "PGRST100", f"'{key}' filters are not supported here")
            column = self._column(columns, table, key)
            clauses.append(self._condition(ident(column), columns[column], raw, q))
        return " AND ".join(clauses) if clauses else "TRUE"

    def _condition(self, column: str, type_: str, raw: str, q: Query) -> str:
        negate = raw.startswith("not.")
        if negate:
            raw = raw[4:]
        operator, dot, value = raw.partition(".")
        if not dot:
            raise PostgrestError(400, "PGRST100", f'"failed to parse filter ({raw})"')
        if operator in OPERATORS:
            sql = f"{column} {OPERATORS[operator]} CAST({q.bind(value)}::text AS {type_})"
        elif operator in ("like", "ilike"):
            pattern = value.replace("*", "%")
            sql = f"{column} {operator.upper()} {q.bind(pattern)}::text"
        elif operator == "is":
            if value.lower() not in IS_VALUES:
                raise PostgrestError(400, "PGRST100", f'"failed to parse filter (is.{value})"')
            sql = f"{column} IS {IS_VALUES[value.lower()]}"
        elif operator == "in":
            if not (value.startswith("(") and value.endswith(")")):
                raise PostgrestError(400, "PGRST100", f'"failed to parse filter (in.{value})"')
            items = split_list(value[1:-1]) if value[1:-1] else []
            sql = f"{column} = ANY(CAST({q.bind(items)}::text[] AS {type_}[]))"
        else:
            raise PostgrestError(400, "PGRST100", f'"unknown or unsupported operator {operator}"')
        return f"NOT ({sql})" if negate else sql

    def _select(self, request: web.Request, table: str, columns: dict[str, str]) -> str:
        raw = request.query.get("select", "*").strip()
        if raw in ("", "*"):
            return "*"
        names = []
        for item in raw.split(","):
            if any(c in item for c in "():"):
                raise PostgrestError(
                    400,
                    "PGRST100",
                    f"'{item}': embedded resources, aliases and casts are not supported here",
                )
            names.append(ident(self._column(columns, table, item.strip())))
        return ", ".join(names)

    def _order_limit(
        self, request: web.Request, table: str, columns: dict[str, str], q: Query
    ) -> str:
        sql = ""
        if order := request.query.get("order"):
            terms = []
            for term in order.split(","):
                name, *modifiers = term.split(".")
                column = ident(self._column(columns, table, name))
                words = {"asc": "ASC", "desc": "DESC"}
                nulls = {"nullsfirst": "NULLS FIRST", "nullslast": "NULLS LAST"}
                parts = [column]
                for modifier in modifiers:
                    if modifier in words:
                        parts.append(words[modifier])
                    elif modifier in nulls:
                        parts.append(nulls[modifier])
                    else:
                        raise PostgrestError(400, "PGRST100", f'"failed to parse order ({term})"')
                terms.append(" ".join(parts))
            sql += " ORDER BY " + ", ".join(terms)
        for key in ("limit", "offset"):
            if key in request.query:
                try:
                    number = int(request.query[key])
                except ValueError:
                    raise PostgrestError(
                        400, "PGRST100", f'"failed to parse {key} ({request.query[key]})"'
                    ) from None
                sql += f" {key.upper()} {q.bind(number)}::bigint"
        return sql

    # -- tables -----------------------------------------------------------------------------

    async def table(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        columns = await self._relation(name)
        method = request.method
        if method in ("GET", "HEAD"):
            return await self._read(request, name, columns)
        if method == "POST":
            return await self._insert(request, name, columns)
        if method in ("PATCH", "DELETE"):
            return await self._change(request, name, columns)
        raise PostgrestError(405, "PGRST117", f"Unsupported HTTP method: {method}")

    async def _read(
        self, request: web.Request, name: str, columns: dict[str, str]
    ) -> web.StreamResponse:
        q = Query()
        where = self._where(request, name, columns, q)
        rows_sql = (
            f"SELECT {self._select(request, name, columns)} FROM {ident(SCHEMA)}.{ident(name)} "
            f"WHERE {where}"
        )
        count_params = list(q.params)
        rows_sql += self._order_limit(request, name, columns, q)
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            body = await conn.fetchval(
                f"SELECT coalesce(json_agg(_r), '[]'::json)::text FROM ({rows_sql}) _r", *q.params
            )
            total = None
            if self._prefer(request).get("count") in ("exact", "planned", "estimated"):
                total = await conn.fetchval(
                    f"SELECT count(*) FROM {ident(SCHEMA)}.{ident(name)} WHERE {where}",
                    *count_params,
                )
        rows = json.loads(body)
        offset = int(request.query.get("offset", "0") or 0)
        headers = {"Content-Range": content_range(offset, len(rows), total)}
        if request.method == "HEAD":
            return web.Response(status=200, headers=headers)
        return self._rows_response(request, rows, 200, headers)

    def _rows_response(
        self, request: web.Request, rows: list[Any], status: int, headers: dict[str, str]
    ) -> web.Response:
        if request.headers.get("Accept", "").startswith("application/vnd.pgrst.object+json"):
            if len(rows) != 1:
                raise PostgrestError(
                    406,
                    "PGRST116",
                    "Cannot coerce the result to a single JSON object",
                    f"The result contains {len(rows)} rows",
                )
            return web.json_response(rows[0], status=status, headers=headers)
        return web.json_response(rows, status=status, headers=headers)

    async def _json_body(self, request: web.Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            raise PostgrestError(400, "PGRST102", "Empty or invalid json") from None

    async def _insert(
        self, request: web.Request, name: str, columns: dict[str, str]
    ) -> web.StreamResponse:
        body = await self._json_body(request)
        rows = [body] if isinstance(body, dict) else body
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise PostgrestError(400, "PGRST102", "All object keys must match")
        if "columns" in request.query:
            wanted = [c.strip().strip('"') for c in split_list(request.query["columns"])]
        else:
            wanted = list(dict.fromkeys(k for row in rows for k in row))
        names = [ident(self._column(columns, name, c)) for c in wanted]
        prefer = self._prefer(request)
        table = f"{ident(SCHEMA)}.{ident(name)}"
        q = Query()
        source = q.bind(json.dumps(rows))
        sql = (
            f"INSERT INTO {table} ({', '.join(names)}) "
            f"SELECT {', '.join(names)} FROM json_populate_recordset(NULL::{table}, {source}::json)"
        )
        resolution = prefer.get("resolution")
        if resolution in ("merge-duplicates", "ignore-duplicates"):
            if "on_conflict" in request.query:
                target = [c.strip() for c in request.query["on_conflict"].split(",")]
            else:
                target = self.catalog.primary_keys.get(name, [])
            keys = ", ".join(ident(self._column(columns, name, c)) for c in target)
            if resolution == "ignore-duplicates" or not names:
                sql += f" ON CONFLICT ({keys}) DO NOTHING"
            else:
                updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names)
                sql += f" ON CONFLICT ({keys}) DO UPDATE SET {updates}"
        return await self._write(request, name, columns, sql, q, status=201)

    async def _change(
        self, request: web.Request, name: str, columns: dict[str, str]
    ) -> web.StreamResponse:
        table = f"{ident(SCHEMA)}.{ident(name)}"
        q = Query()
        if request.method == "PATCH":
            body = await self._json_body(request)
            if not isinstance(body, dict) or not body:
                raise PostgrestError(400, "PGRST102", "PATCH needs a JSON object")
            names = [ident(self._column(columns, name, c)) for c in body]
            source = q.bind(json.dumps(body))
            sql = (
                f"UPDATE {table} SET ({', '.join(names)}) = (SELECT {', '.join(names)} "
                f"FROM json_populate_record(NULL::{table}, {source}::json))"
            )
        else:
            sql = f"DELETE FROM {table}"
        sql += f" WHERE {self._where(request, name, columns, q)}"
        return await self._write(request, name, columns, sql, q, status=200)

    async def _write(
        self,
        request: web.Request,
        name: str,
        columns: dict[str, str],
        sql: str,
        q: Query,
        *,
        status: int,
    ) -> web.StreamResponse:
        select = self._select(request, name, columns)
        statement = (
            f"WITH _w AS ({sql} RETURNING *) "
            f"SELECT coalesce(json_agg(_r), '[]'::json)::text FROM (SELECT {select} FROM _w) _r"
        )
        async with self.pool.acquire() as conn, conn.transaction():
            rows = json.loads(await conn.fetchval(statement, *q.params))
        prefer = self._prefer(request)
        counted = prefer.get("count") in ("exact", "planned", "estimated")
        headers = {"Content-Range": content_range(0, len(rows), len(rows) if counted else None)}
        if prefer.get("return") == "representation":
            return self._rows_response(request, rows, status, headers)
        return web.Response(status=201 if status == 201 else 204, headers=headers)

    # -- rpc --------------------------------------------------------------------------------

    async def _function(self, name: str, given: set[str]) -> Function:
        for attempt in range(2):
            for candidate in self.catalog.functions.get(name, []):
                if set(candidate.args) == given:
                    return candidate
            if attempt == 0:
                async with self.pool.acquire() as conn:
                    self.catalog = await Catalog.load(conn)
        listed = ", ".join(sorted(given))
        raise PostgrestError(
            404,
            "PGRST202",
            f"Could not find the function {SCHEMA}.{name}({listed}) in the schema cache",
            "Searched for the function with the given argument names, but no matches were found "
            "in the schema cache.",
        )

    async def rpc(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if request.method == "POST":
            body = await self._json_body(request) if request.can_read_body else {}
        elif request.method == "GET":
            body = dict(request.query)
        else:
            raise PostgrestError(405, "PGRST117", f"Unsupported HTTP method: {request.method}")
        if not isinstance(body, dict):
            raise PostgrestError(400, "PGRST102", "rpc arguments must be a JSON object")
        function = await self._function(name, set(body))
        q = Query()
        call = f"{ident(SCHEMA)}.{ident(function.name)}"
        if function.args:
            definition = ", ".join(f"{ident(a)} {t}" for a, t in function.args.items())
            source = f" FROM json_to_record({q.bind(json.dumps(body))}::json) AS _a({definition})"
            arguments = ", ".join(f"{ident(a)} => _a.{ident(a)}" for a in function.args)
        else:
            source, arguments = "", ""
        if function.returns_set:
            from_clause = source + ("," if source else " FROM") + f" LATERAL {call}({arguments}) _r"
            sql = f"SELECT coalesce(json_agg(_r), '[]'::json)::text{from_clause}"
        elif function.returns == "void":
            sql = f"SELECT {call}({arguments})::text{source}"
        else:
            sql = f"SELECT to_json({call}({arguments}))::text{source}"
        async with self.pool.acquire() as conn, conn.transaction():
            result = await conn.fetchval(sql, *q.params)
        if function.returns == "void":
            return web.Response(status=204)
        data = json.loads(result) if result is not None else None
        if function.returns_set:
            return self._rows_response(request, data, 200, {})
        return web.json_response(data, status=200)


def content_range(offset: int, count: int, total: int | None) -> str:
    shown = f"{offset}-{offset + count - 1}" if count else "*"
    return f"{shown}/{'*' if total is None else total}"


def database_error(exc: asyncpg.PostgresError) -> PostgrestError:
    """A PostgREST error object for a database error, with PostgREST's HTTP status."""
    state = getattr(exc, "sqlstate", None) or "XX000"
    if state in ("23505", "23503"):
        status = 409
    elif state in ("42883",):
        status = 404
    elif state == "42501":
        status = 403
    elif state == "25006":
        status = 405
    elif state[:2] in ("22", "23", "42", "P0"):
        status = 400
    else:
        status = 500
    return PostgrestError(
        status,
        state,
        str(getattr(exc, "message", None) or exc),
        getattr(exc, "detail", None),
        getattr(exc, "hint", None),
    )


@asynccontextmanager
async def running_postgrest(database_url: str, service_key: str) -> AsyncIterator[str]:
    """Serve the test double for ``database_url`` on 127.0.0.1; yields its base URL (what
    Supabase calls the project URL, without ``/rest/v1``)."""
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=10, server_settings={"timezone": "UTC"}
    )
    double = PostgrestDouble(pool, service_key)
    runner = web.AppRunner(double.app, access_log=None)
    try:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
        await pool.close()
