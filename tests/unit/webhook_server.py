"""A local stand-in for a Slack or Discord incoming webhook: ``POST /hook`` takes a JSON body and
answers 204 (Discord) or 200 ``ok`` (Slack); every body is kept in ``WebhookServer.bodies``.

``status`` sets the answer's status (e.g. 500); ``delay`` holds each answer that many seconds
(longer than the client's timeout, to test that a slow webhook never holds up a cycle).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class WebhookServer:
    status: int = 204
    delay: float = 0.0
    bodies: list[Any] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status == 200:
            return web.Response(text="ok")
        return web.Response(status=self.status)

    def kinds(self) -> list[tuple[str, str | None]]:
        return [(b.get("kind"), b.get("account")) for b in self.bodies]
