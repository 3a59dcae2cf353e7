"""The harness of every platform, for the adapter contract suite (``test_contract.py``).

Each factory is an async context manager yielding a :class:`tests.adapters.harness.Harness`: the
sandbox in memory, and each real adapter against its local test server on 127.0.0.1. Failure kinds
(``tests.adapters.harness.FAILURE_KINDS``) are mapped onto each back end's own failure switches.
Every platform reads the wall clock (the test servers stamp posts with real time), so a daemon
driving one of them uses a ``SystemClock``.

:data:`HARNESSES` also holds the Bluesky and Threads harnesses when their modules import.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

from aiohttp import web

from adapters.base import Platform
from adapters.mastodon import MastodonPlatform
from adapters.sandbox import REPLY_LABEL, SandboxPlatform, SandboxWorld, Scenario
from adapters.x import XPlatform
from tests.adapters.harness import FAILURE_KINDS, Harness, HarnessFactory
from tests.adapters.mastodon_server import MastodonServer
from tests.adapters.x_server import XServer

CLIENT_TIMEOUT_S = 1.0  # the X and Mastodon clients' per-request timeout in these harnesses
LOST_RESPONSE_DELAY_S = 3.0  # "lose_response": the server answers this late, past the timeout
SANDBOX_ACCOUNT = "contract"


def wall_clock() -> datetime:
    return datetime.now(UTC)


def _check_kind(kind: str, count: int) -> None:
    if kind not in FAILURE_KINDS:
        raise ValueError(f"unknown failure kind {kind!r}; known: {', '.join(FAILURE_KINDS)}")
    if count < 1:
        raise ValueError("count must be >= 1")


# -- sandbox --------------------------------------------------------------------------------------

SANDBOX_FAULTS = {  # harness kind -> the sandbox's fault kind (adapters.sandbox.FAULT_KINDS)
    "rate_limit": "rate_limit",
    "unavailable": "publish_error",
    "lose_response": "publish_ambiguous",
    "auth": "auth_failed",
}


class SandboxHarness:
    """The in-memory simulated platform. It has no wire format, hence no 'malformed'."""

    def __init__(self, world: SandboxWorld, platform: SandboxPlatform) -> None:
        self.world = world
        self.platform: Platform = platform

    def fail_next(self, kind: str, count: int = 1) -> None:
        _check_kind(kind, count)
        if kind not in SANDBOX_FAULTS:
            raise ValueError(f"the sandbox cannot simulate {kind!r}")
        self.world.inject_fault(SANDBOX_FAULTS[kind], count=count, account=SANDBOX_ACCOUNT)

    def stored_texts(self) -> list[str]:
        # Read the world's table directly: find_recent would go through the adapter under test
        # (and consume injected faults).
        rows = self.world._db.execute(
            "SELECT text FROM posts WHERE account = ? AND deleted = 0 ORDER BY idx",
            (SANDBOX_ACCOUNT,),
        )
        return [str(row[0]) for row in rows]

    def supports(self, kind: str) -> bool:
        return kind in SANDBOX_FAULTS

    def parent_of(self, post_id: str) -> str | None:
        rows = self.world._db.execute("SELECT labels FROM posts WHERE id = ?", (post_id,))
        (labels,) = rows.fetchone()
        parent = json.loads(labels).get(REPLY_LABEL)
        return None if parent is None else str(parent)

    def lose_response_after(self, creates: int) -> None:
        raise ValueError("the sandbox's faults hit the next call (use the SIGKILL test)")


@asynccontextmanager
async def sandbox_harness() -> AsyncIterator[Harness]:
    world = SandboxWorld(Scenario.load("default"), seed=11, start=wall_clock())
    try:
        yield SandboxHarness(world, world.platform(SANDBOX_ACCOUNT, now=wall_clock))
    finally:
        world.close()


# -- X --------------------------------------------------------------------------------------------

ANY_ROUTE = "*"  # a fault queued here hits the next request, whatever its route


class _AnyRouteXServer(XServer):
    """XServer whose faults may also target "the next request" rather than one route."""

    def _gate(self, route: str, request: web.Request) -> tuple[web.Response | None, Any]:
        anywhere = self.faults.get(ANY_ROUTE)
        if anywhere:
            self.faults.setdefault(route, []).insert(0, anywhere.pop(0))
        return super()._gate(route, request)


X_FAULTS = {  # harness kind -> XServer fault kind
    "rate_limit": "rate_limit",
    "unavailable": "unavailable",
    "auth": "unauthorized",
    "malformed": "malformed",
}


class XHarness:
    def __init__(self, server: _AnyRouteXServer, platform: XPlatform) -> None:
        self.server = server
        self.platform: Platform = platform

    def fail_next(self, kind: str, count: int = 1) -> None:
        _check_kind(kind, count)
        if kind == "lose_response":  # stored, then answered after the client gave up
            self.server.fail(
                "POST /2/tweets", "slow_after_store", times=count, delay=LOST_RESPONSE_DELAY_S
            )
        else:
            self.server.fail(ANY_ROUTE, X_FAULTS[kind], times=count)

    def stored_texts(self) -> list[str]:
        return [post.text for post in self.server.posts.values() if not post.deleted]

    def supports(self, kind: str) -> bool:
        return kind in FAILURE_KINDS

    def parent_of(self, post_id: str) -> str | None:
        return self.server.posts[post_id].reply_to

    def lose_response_after(self, creates: int) -> None:
        if creates:
            self.server.fail("POST /2/tweets", "none", times=creates)
        self.fail_next("lose_response")


@asynccontextmanager
async def x_harness() -> AsyncIterator[Harness]:
    server = _AnyRouteXServer()
    await server.start()
    platform = XPlatform(
        consumer_key="ck",
        consumer_secret="cs",
        access_token="at",
        access_token_secret="ats",
        base_url=server.base_url,
        now=wall_clock,
        timeout=CLIENT_TIMEOUT_S,
        read_backoff=0.01,
    )
    try:
        yield XHarness(server, platform)
    finally:
        await platform.aclose()
        await server.close()


# -- Mastodon -------------------------------------------------------------------------------------

MASTODON_FAULTS = {  # harness kind -> MastodonServer fault kind
    "rate_limit": "rate_limit",
    "unavailable": "unavailable",
    "auth": "unauthorized",
    "malformed": "malformed",
}


class MastodonHarness:
    def __init__(self, server: MastodonServer, platform: MastodonPlatform) -> None:
        self.server = server
        self.platform: Platform = platform

    def fail_next(self, kind: str, count: int = 1) -> None:
        _check_kind(kind, count)
        if kind == "lose_response":  # the status is stored, the answer comes after the timeout
            self.server.fail(
                "slow",
                method="POST",
                path="/api/v1/statuses",
                times=count,
                delay=LOST_RESPONSE_DELAY_S,
            )
        else:
            self.server.fail(MASTODON_FAULTS[kind], times=count)

    def stored_texts(self) -> list[str]:
        return [self.server.texts[status_id] for status_id in self.server.statuses]

    def supports(self, kind: str) -> bool:
        return kind in FAILURE_KINDS

    def parent_of(self, post_id: str) -> str | None:
        parent = self.server.statuses[post_id]["in_reply_to_id"]
        return None if parent is None else str(parent)

    def lose_response_after(self, creates: int) -> None:
        if creates:
            self.server.fail("none", method="POST", path="/api/v1/statuses", times=creates)
        self.fail_next("lose_response")


@asynccontextmanager
async def mastodon_harness() -> AsyncIterator[Harness]:
    server = await MastodonServer().start()
    platform = MastodonPlatform(
        access_token=server.token,
        base_url=server.base_url,
        now=wall_clock,
        request_timeout=CLIENT_TIMEOUT_S,
    )
    try:
        # Read the instance's limits now, so that a queued fault hits the call under test and
        # not publish's one-off look at /api/v2/instance.
        await platform.load_limits()
        yield MastodonHarness(server, platform)
    finally:
        await platform.aclose()
        await server.stop()


# -- the registry ---------------------------------------------------------------------------------


def _optional(module: str, factory: str) -> HarnessFactory | None:
    """A factory from a module that may not exist yet (platforms still being written)."""
    try:
        found = getattr(importlib.import_module(module), factory, None)
    except ImportError:
        return None
    return cast(HarnessFactory, found) if callable(found) else None


HARNESSES: dict[str, HarnessFactory] = {
    "sandbox": sandbox_harness,
    "x": x_harness,
    "mastodon": mastodon_harness,
}
for _name, _module in (
    ("bluesky", "tests.adapters.bluesky_server"),
    ("threads", "tests.adapters.threads_server"),
):
    _factory = _optional(_module, f"{_name}_harness")
    if _factory is not None:
        HARNESSES[_name] = _factory
