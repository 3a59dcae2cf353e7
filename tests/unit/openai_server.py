"""A local stand-in for OpenAI's chat-completions endpoint, enough for the LLM generator.

``POST /v1/chat/completions`` answers with the shape of the real API (a ``chat.completion`` with
``choices[0].message.content``, ``refusal``, ``finish_reason`` and ``usage``). Its post is nine
words drawn from a fixed list (seeded by the request number), short enough for any platform.
Every request's JSON body is kept in ``OpenAIServer.requests``.

Modes are queued with :meth:`OpenAIServer.queue` and consumed one per request (then ``valid``):

- ``valid``: a JSON answer ``{"text", "rationale"}`` (``{"parts", "rationale"}`` with
  ``thread_parts`` parts when the request's schema is named ``thread``);
- ``too_long``: a JSON answer whose text has ``length=`` characters (default 5,000);
- ``malformed``: 200 with content that is not JSON;
- ``refusal``: 200 with ``message.refusal`` set and no content;
- ``rate_limit``: 429 with ``retry-after`` and ``x-ratelimit-*`` headers and OpenAI's error body;
- ``server_error``: 500 with OpenAI's error body.

``POST /v1/moderations`` answers like the real moderation endpoint (``id``, ``model``,
``results[0]`` with ``flagged``, ``categories``, ``category_scores`` and
``category_applied_input_types``). A text containing ``flag_word`` (case-insensitive) is flagged
for ``flag_categories``; ``moderation_error`` makes it answer 500. Its request bodies are kept in
``OpenAIServer.moderation_requests``.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

PROMPT_TOKENS = 412
COMPLETION_TOKENS = 57
MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
WORDS = (
    "shipping small batches beats planning big launches because feedback arrives while the "
    "context is still fresh and cheap to act on so every team should measure cycle time weekly "
    "review support tickets together write decisions down delete unused features early ask users "
    "directly pair on hard bugs protect focus hours celebrate boring releases"
).split()


@dataclass
class OpenAIServer:
    modes: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    too_long_length: int = 5_000
    thread_parts: int = 3  # parts of an answer to the "thread" schema (docs/threads.md)
    moderation_requests: list[dict[str, Any]] = field(default_factory=list)
    flag_word: str | None = None  # a text containing it is flagged by /v1/moderations
    flag_categories: tuple[str, ...] = ("harassment", "violence")
    moderation_error: bool = False  # /v1/moderations answers 500
    base_url: str = ""
    _runner: web.AppRunner | None = None
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def start(self) -> str:
        """Serve on a free port of 127.0.0.1; return the base URL the client takes (``.../v1``)."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_post("/v1/moderations", self._moderations)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def queue(self, *modes: str) -> None:
        self.modes.extend(modes)

    async def _completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        mode = self.modes.pop(0) if self.modes else "valid"
        n = next(self._counter)
        if mode == "rate_limit":
            return web.json_response(
                _error("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
                status=429,
                headers={
                    "retry-after": "20",
                    "x-ratelimit-limit-requests": "500",
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": "20s",
                },
            )
        if mode == "server_error":
            return web.json_response(
                _error("The server had an error while processing your request.", None, None),
                status=500,
            )
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        if mode == "refusal":
            message["refusal"] = "I'm sorry, I can't help with that."
        elif mode == "malformed":
            message["content"] = '{"text": "half an answer'
        else:
            text = " ".join(random.Random(n).sample(WORDS, 9)).capitalize() + "."
            if mode == "too_long":
                text = ("x" * self.too_long_length)[: self.too_long_length]
            schema = (body.get("response_format") or {}).get("json_schema") or {}
            if schema.get("name") == "thread":  # the thread schema: {"parts": [...]}
                parts = [
                    " ".join(random.Random(n * 10 + i).sample(WORDS, 9)).capitalize() + "."
                    for i in range(self.thread_parts)
                ]
                if mode == "too_long":
                    parts[-1] = text
                content = {"parts": parts, "rationale": "One idea per part."}
                message["content"] = json.dumps(content)
            else:
                message["content"] = json.dumps({"text": text, "rationale": "Specific and short."})
        return web.json_response(
            {
                "id": f"chatcmpl-local{n}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": f"{body.get('model', 'unknown')}-2024-07-18",
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
                ],
                "usage": {
                    "prompt_tokens": PROMPT_TOKENS,
                    "completion_tokens": COMPLETION_TOKENS,
                    "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
                },
                "service_tier": "default",
                "system_fingerprint": "fp_local",
            }
        )

    async def _moderations(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.moderation_requests.append(body)
        if self.moderation_error:
            return web.json_response(
                _error("The server had an error while processing your request.", None, None),
                status=500,
            )
        inputs = body.get("input", "")
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        results = []
        for text in texts:
            hit = self.flag_word is not None and self.flag_word.lower() in str(text).lower()
            flagged = set(self.flag_categories) if hit else set()
            results.append(
                {
                    "flagged": hit,
                    "categories": {c: c in flagged for c in MODERATION_CATEGORIES},
                    "category_scores": {
                        c: 0.93 if c in flagged else 0.0001 for c in MODERATION_CATEGORIES
                    },
                    "category_applied_input_types": {
                        c: ["text"] if c in flagged else [] for c in MODERATION_CATEGORIES
                    },
                }
            )
        return web.json_response(
            {
                "id": f"modr-local{len(self.moderation_requests)}",
                "model": body.get("model", "omni-moderation-latest"),
                "results": results,
            }
        )


def _error(message: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "requests", "param": param, "code": code}}
