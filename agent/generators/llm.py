"""The LLM generator: asks an OpenAI-compatible chat-completions API to write the post.

One request per attempt. The prompt carries the account's persona and niche, the chosen arms
(content type, formula, hook, topic) with their catalogue descriptions, the platform's character
limit and the account's latest posts (so the model does not repeat itself). The answer is forced
into a JSON schema (structured output, ``strict``)::

    {"text": "<the post>", "rationale": "<one sentence: why this should work>"}

or, for a thread (``arms.format == "thread"``, docs/threads.md), the schema named ``thread``::

    {"parts": ["<first post>", "<second post>", ...], "rationale": "..."}

with 2 to ``max_parts`` parts, each within ``max_chars``.

A draft is accepted when its text is non-empty, fits ``max_chars`` (code points; the plan cycle's
gate then applies the platform's own counting) and is not one of the recent posts. A refusal, a
malformed answer or an invalid draft is retried (the reason is told to the model) up to
``max_attempts`` times, then reported as :class:`~agent.errors.GenerationError`. API errors
(rate limits, 5xx, timeouts, connection failures) become a GenerationError at once: the plan cycle
stores a failed row and tries again at its next tick.

Every attempt is billed, so the draft's tokens and cost cover all attempts of the request. The
cost is computed from the configured per-model prices; a model with no price costs 0 and the
draft's ``extra`` says so.

:meth:`OpenAIGenerator.moderate` asks the moderation endpoint (``omni-moderation-latest``, free of
charge) about a draft that passed the gate: the plan cycle rejects a flagged draft with the
flagged categories as its reason. Its API errors are GenerationErrors too, so an outage stores a
failed row instead of letting an unchecked post through.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema

from agent.config import DEFAULT_PROMPT, TokenPrice
from agent.errors import GenerationError
from agent.models import THREAD, Draft, GenerationRequest, joined

__all__ = ["MODERATION_MODEL", "PROMPT_VERSION", "OpenAIGenerator", "build_messages"]

PROMPT_VERSION = "openai-v1"  # bump when the prompt or the schema changes
RECENT_IN_PROMPT = 10  # latest posts shown to the model; more costs tokens for little gain
RECENT_MAX_CHARS = 300  # each shown post is cut to this many characters
DEFAULT_MAX_RETRIES = 2  # the client's own retries of 429/5xx/connection errors per attempt
MODERATION_MODEL = "omni-moderation-latest"

RESPONSE_FORMAT: ResponseFormatJSONSchema = {
    "type": "json_schema",
    "json_schema": {
        "name": "post",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "The post, exactly as published."},
                "rationale": {"type": "string", "description": "One sentence: why it works."},
            },
            "required": ["text", "rationale"],
            "additionalProperties": False,
        },
    },
}

# a thread (arms.format == "thread", docs/threads.md): its parts, in order
THREAD_RESPONSE_FORMAT: ResponseFormatJSONSchema = {
    "type": "json_schema",
    "json_schema": {
        "name": "thread",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "parts": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The thread's posts in order, each exactly as published.",
                },
                "rationale": {"type": "string", "description": "One sentence: why it works."},
            },
            "required": ["parts", "rationale"],
            "additionalProperties": False,
        },
    },
}

SYSTEM_PROMPT = """\
You write social media posts for one account.
Persona: {persona}
Niche: {niche}
Write as this person, in the first person where natural. No preamble, no quotation marks around
the post, no hashtags unless they add something. Answer with JSON: "text" is the post exactly as
it will be published, "rationale" one sentence on why it should work."""


def build_messages(request: GenerationRequest) -> list[ChatCompletionMessageParam]:
    """The chat messages for ``request`` (first attempt)."""
    arms = request.arms
    thread = arms.format == THREAD
    opening = (
        f"Write a thread: 2 to {request.max_parts} posts that read in order, the first one "
        "able to stand alone and make people open the rest."
        if thread
        else "Write one post."
    )
    lines = [
        opening,
        "",
        _arm_line("Content type", arms.content_type, request.descriptions.get("content_type")),
        _arm_line("Formula", arms.formula, request.descriptions.get("formula")),
        _arm_line("Hook", arms.hook, request.descriptions.get("hook")),
        f"- Topic: {arms.topic}",
        "",
        f"Hard limit: at most {request.max_chars} characters"
        + (" per post of the thread" if thread else "")
        + ", spaces and line breaks included.",
    ]
    if thread:
        lines += ['Answer with "parts": the posts in order, no numbering needed.']
    recent = [_shorten(t) for t in request.recent_texts[:RECENT_IN_PROMPT] if t.strip()]
    if recent:
        lines += ["", "The account's latest posts, newest first. Do not repeat or paraphrase them:"]
        lines += [f"{i}. {text}" for i, text in enumerate(recent, start=1)]
    system = SYSTEM_PROMPT.format(persona=request.persona.strip(), niche=request.niche.strip())
    if request.instructions.strip():
        system += f"\nAlso follow these instructions:\n{request.instructions.strip()}"
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": "\n".join(lines)},
    ]


class OpenAIGenerator:
    """Writes posts with an OpenAI-compatible model; see the module docstring."""

    name = "openai"

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        temperature: float,
        base_url: str | None = None,
        max_attempts: int = 3,
        timeout: float = 30.0,
        prices: Mapping[str, TokenPrice] | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._api_key = api_key
        self.model = model
        self.temperature = temperature
        self.base_url = base_url
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.prices = dict(prices or {})
        self.max_retries = max_retries
        self._format = RESPONSE_FORMAT  # the schema of the request being written

    async def write(self, request: GenerationRequest) -> Draft:
        """Write one post (or a thread, by ``request.arms.format``) for ``request``; raise
        GenerationError when no valid draft comes back."""
        messages = build_messages(request)
        self._format = THREAD_RESPONSE_FORMAT if request.arms.format == THREAD else RESPONSE_FORMAT
        tokens_in = tokens_out = 0
        reason = ""
        # A client per request: posts are minutes apart, and nothing stays bound to an event loop
        # or needs closing when the agent stops.
        async with AsyncOpenAI(
            api_key=self._api_key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
        ) as client:
            for _ in range(self.max_attempts):
                completion = await self._complete(client, messages)
                if completion.usage is not None:
                    tokens_in += completion.usage.prompt_tokens
                    tokens_out += completion.usage.completion_tokens
                text, rationale, reason, raw, parts = _read(completion, request)
                if not reason:
                    return self._draft(
                        text,
                        tokens_in=tokens_in,
                        tokens_out=tokens_out,
                        extra={"rationale": rationale, "response_model": completion.model},
                        prompt=request.prompt,
                        parts=parts,
                    )
                if raw is not None:
                    messages = [*messages, {"role": "assistant", "content": raw}]
                messages = [*messages, {"role": "user", "content": f"Rejected: {reason}. Retry."}]
        raise GenerationError(
            f"openai: no valid draft from {self.model} after {self.max_attempts} attempts "
            f"(last: {reason})"
        )

    async def moderate(self, text: str) -> str | None:
        """None when the moderation endpoint does not flag ``text``, else the reason to reject it.

        Raise GenerationError when the endpoint cannot answer: the caller must not publish an
        unchecked post.
        """
        async with AsyncOpenAI(
            api_key=self._api_key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
        ) as client:
            try:
                response = await client.moderations.create(model=MODERATION_MODEL, input=text)
            except openai.OpenAIError as exc:
                raise self._api_error(exc, "moderation") from exc
        if not response.results:
            raise GenerationError("openai: moderation: the answer had no results")
        flagged = [r for r in response.results if r.flagged]
        if not flagged:
            return None
        categories = sorted(
            {
                name
                for result in flagged
                for name, hit in result.categories.model_dump(by_alias=True).items()
                if hit
            }
        )
        return "flagged by moderation: " + (", ".join(categories) or "no category given")

    async def _complete(
        self, client: AsyncOpenAI, messages: Sequence[ChatCompletionMessageParam]
    ) -> ChatCompletion:
        """One API call; vendor errors are translated here and go no further."""
        try:
            return await client.chat.completions.create(
                model=self.model,
                messages=list(messages),
                temperature=self.temperature,
                response_format=self._format,
            )
        except openai.OpenAIError as exc:
            raise self._api_error(exc) from exc

    def _api_error(self, exc: openai.OpenAIError, what: str = "") -> GenerationError:
        """The GenerationError that stands for a vendor error (``what``: which call failed)."""
        prefix = f"openai: {what}: " if what else "openai: "
        if isinstance(exc, openai.RateLimitError):
            after = exc.response.headers.get("retry-after")
            wait = f"; retry after {after}s" if after else ""
            return GenerationError(f"{prefix}rate limited (HTTP 429){wait}")
        if isinstance(exc, openai.APIStatusError):
            kind = "server error" if exc.status_code >= 500 else "request refused"
            return GenerationError(
                f"{prefix}{kind} (HTTP {exc.status_code}): {_short(exc.message)}"
            )
        if isinstance(exc, openai.APITimeoutError):
            return GenerationError(f"{prefix}no answer within {self.timeout:g}s")
        if isinstance(exc, openai.APIConnectionError):
            where = self.base_url or "the OpenAI API"
            return GenerationError(f"{prefix}cannot reach {where}: {_short(str(exc))}")
        return GenerationError(f"{prefix}{type(exc).__name__}: {_short(str(exc))}")

    def _draft(
        self,
        text: str,
        *,
        tokens_in: int,
        tokens_out: int,
        extra: dict[str, Any],
        prompt: str = DEFAULT_PROMPT,
        parts: tuple[str, ...] = (),
    ) -> Draft:
        price = self.prices.get(self.model)
        cost = 0.0
        if price is None:
            extra["cost_note"] = f"no price configured for model {self.model!r}: cost recorded as 0"
        else:
            cost = (
                tokens_in * price.input_per_million + tokens_out * price.output_per_million
            ) / 1_000_000
        return Draft(
            text=text,
            parts=parts,
            generator=self.name,
            model=self.model,
            # the built-in prompt's version, and the configured prompt version added to it
            prompt_version=PROMPT_VERSION
            if prompt == DEFAULT_PROMPT
            else f"{PROMPT_VERSION}+{prompt}",
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=cost,
            extra=extra,
        )


def _read(
    completion: ChatCompletion, request: GenerationRequest
) -> tuple[str, str, str, str | None, tuple[str, ...]]:
    """(text, rationale, reason it is unusable or "", raw content, a thread's parts) of one
    answer."""
    if not completion.choices:
        return "", "", "the answer had no choices", None, ()
    message = completion.choices[0].message
    if message.refusal:
        return "", "", f"the model refused: {_short(message.refusal)}", None, ()
    raw = message.content
    if not raw:
        return "", "", "the answer was empty", None, ()
    try:
        data = json.loads(raw)
    except ValueError:
        return "", "", "the answer was not valid JSON", raw, ()
    if request.arms.format == THREAD:
        return _read_thread(data, request, raw)
    return (*_read_post(data, request, raw), ())


def _read_thread(
    data: Any, request: GenerationRequest, raw: str
) -> tuple[str, str, str, str | None, tuple[str, ...]]:
    parts = data.get("parts") if isinstance(data, dict) else None
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        return "", "", "the answer did not match the schema (no list of strings 'parts')", raw, ()
    texts = tuple(p.strip() for p in parts if p.strip())
    rationale = data.get("rationale")
    rationale = rationale if isinstance(rationale, str) else ""
    if not 2 <= len(texts) <= request.max_parts:
        reason = f"the thread had {len(texts)} parts; write 2 to {request.max_parts}"
        return "", "", reason, raw, ()
    for i, text in enumerate(texts, start=1):
        if len(text) > request.max_chars:
            reason = f"part {i} had {len(text)} characters, the limit is {request.max_chars}"
            return "", "", reason, raw, ()
    text = joined(texts)
    if text in {t.strip() for t in request.recent_texts}:
        return "", "", "the thread repeated a recent post word for word", raw, ()
    return text, rationale, "", raw, texts


def _read_post(data: Any, request: GenerationRequest, raw: str) -> tuple[str, str, str, str | None]:
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        return "", "", "the answer did not match the schema (no string 'text')", raw
    text = data["text"].strip()
    rationale = data.get("rationale")
    rationale = rationale if isinstance(rationale, str) else ""
    if not text:
        return "", "", "the post was empty", raw
    if len(text) > request.max_chars:
        return "", "", f"the post had {len(text)} characters, the limit is {request.max_chars}", raw
    if text in {t.strip() for t in request.recent_texts}:
        return "", "", "the post repeated a recent post word for word", raw
    return text, rationale, "", raw


def _arm_line(label: str, arm: str, description: str | None) -> str:
    return f"- {label}: {arm}" + (f" ({description})" if description else "")


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= RECENT_MAX_CHARS else flat[: RECENT_MAX_CHARS - 1] + "…"


def _short(message: str, limit: int = 200) -> str:
    line = " ".join(message.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
