"""The OpenAI-compatible HTTP layer: routes, request/response schemas, auth, limits, errors, SSE.

`POST /v1/chat/completions` (whole or `stream: true` server-sent events ending in `data: [DONE]`),
`GET /v1/models`, `GET /health`. Errors are OpenAI error objects (`{"error": {message, type, param, code}}`)
so OpenAI clients raise their usual exceptions. Nothing here touches a model: handlers queue jobs on the
scheduler and relay their events.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from smoothie_cli.serve import backend as backend_module
from smoothie_cli.serve.scheduler import Closed, Delta, Done, Failed, Job, QueueFull, Scheduler

MAX_STOPS = 4  # as OpenAI
BIAS_LIMIT = 100.0  # OpenAI accepts logit_bias values in [-100, 100]
# OpenAI request fields whose meaning this server cannot honour: ignoring them would answer another question
# (no tool calls, no JSON schema, no log-probabilities), so they are refused with a 400 naming the field
UNSUPPORTED = ("tools", "tool_choice", "functions", "function_call", "response_format", "top_logprobs",
               "audio", "prediction", "web_search_options")  # fmt: skip
log = logging.getLogger("smoothie.serve")


# ---- request schemas ---------------------------------------------------------------------------------


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat-completions request: the fields this server honours, those it refuses (UNSUPPORTED), and
    any other field accepted and logged.

    extra="allow", not "forbid" (a deliberate choice): OpenAI adds request fields often (store, metadata,
    service_tier, parallel_tool_calls, …) and new client versions send them by default; a 400 for each would
    break those clients over fields that change nothing this server writes. vLLM accepts unknown fields and
    logs them; so does this. A field that would change the answer if ignored is named in UNSUPPORTED and
    refused, and a known field is checked as strictly as before (n must be 1, penalties 0, …)."""

    model_config = ConfigDict(extra="allow")

    messages: list[ChatMessage] = Field(min_length=1)
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    n: Literal[1] = 1
    stop: str | list[str] | None = None
    seed: int | None = None
    logit_bias: dict[str, float] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None  # accepted and ignored, as by other local servers
    # accepted only at their neutral values, so clients that always send them still work
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    logprobs: bool = False

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> list[str]:
        stops = [value] if isinstance(value, str) else list(value or [])
        if len(stops) > MAX_STOPS:
            raise ValueError(f"at most {MAX_STOPS} stop strings, not {len(stops)}")
        if any(not s for s in stops):
            raise ValueError("a stop string is empty")
        return stops

    @field_validator("logit_bias")
    @classmethod
    def _bias(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for key, bias in (value or {}).items():
            if not key.isdigit():
                raise ValueError(f"logit_bias keys are token ids, not '{key}'")
            if not -BIAS_LIMIT <= bias <= BIAS_LIMIT:
                raise ValueError(f"logit_bias values must be in [-100, 100], not {bias}")
        return value

    @field_validator("frequency_penalty", "presence_penalty")
    @classmethod
    def _neutral(cls, value: float) -> float:
        if value != 0:
            raise ValueError("is not supported by this server; leave it out or send 0")
        return value

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, value: bool) -> bool:
        if value:
            raise ValueError("is not supported by this server")
        return value

    tools: Any = None
    tool_choice: Any = None
    functions: Any = None
    function_call: Any = None
    response_format: Any = None
    top_logprobs: Any = None
    audio: Any = None
    prediction: Any = None
    web_search_options: Any = None

    @field_validator(*UNSUPPORTED)
    @classmethod
    def _unsupported(cls, value: Any) -> Any:
        # a plain-text response format is what this server writes anyway
        if value is not None and value != {"type": "text"}:
            raise ValueError("is not supported by this server; leave it out")
        return value


# ---- response schemas --------------------------------------------------------------------------------


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class GateInfo(BaseModel):
    """What the cautious gate did with this request (an extra field OpenAI clients keep)."""

    gate: str  # toxic | safe | untagged | none
    gate_reading: (
        str  # how the gate was read: "calibrated margin > 1.2, read by …", "greedy tag, …", "off: …"
    )
    strategy: str  # speculative | batched | speculative+batched | refused


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: str | None = None
    logprobs: None = None


ChoiceT = TypeVar("ChoiceT")


class _CompletionObject(BaseModel, Generic[ChoiceT]):
    """What a whole completion and each chunk of a streamed one hold, in OpenAI's order of keys."""

    id: str
    object: str
    created: int
    model: str
    choices: list[ChoiceT]


class ChatCompletion(_CompletionObject[Choice]):
    object: Literal["chat.completion"] = "chat.completion"
    usage: Usage
    smoothie: GateInfo


class ChatCompletionChunk(_CompletionObject[ChunkChoice]):
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    usage: Usage | None = None
    smoothie: GateInfo | None = None


# ---- settings and errors -----------------------------------------------------------------------------


@dataclass
class Settings:
    model_id: str
    api_key: str | None = None
    max_tokens: int = 512  # the cap on a request's max_tokens, and its value when the request gives none
    max_body_bytes: int = 1 << 20
    context_length: int | None = None  # the target's positions; prompt + max_tokens must fit
    poll_seconds: float = 0.25  # how often a non-streaming handler checks that its client is still there


def error_response(
    status: int,
    message: str,
    kind: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def bad_request(message: str, param: str | None = None) -> JSONResponse:
    return error_response(400, message, "invalid_request_error", param)


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413 before it is read into memory (by its
    Content-Length, or while it streams in when it has none)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        too_large = error_response(
            413,
            f"the request body is over this server's limit of {self.limit} bytes",
            "invalid_request_error",
            code="request_too_large",
        )
        if length is not None and length.isdigit() and int(length) > self.limit:
            await too_large(scope, receive, send)
            return
        seen = 0

        async def limited() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await too_large(scope, receive, send)


class _TooLarge(Exception):
    pass


class _Unauthorised(Exception):
    """No or a wrong API key (answered 401 by the app's handler)."""


# ---- the app -------------------------------------------------------------------------------------------


def create_app(scheduler: Scheduler, settings: Settings) -> FastAPI:
    """The FastAPI app over a scheduler; the scheduler's worker starts and drains with the app's lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if scheduler.thread is None:
            scheduler.start()
        yield
        # uvicorn has finished the in-flight requests (SIGINT/SIGTERM); stop the worker
        await asyncio.to_thread(scheduler.close)

    app = FastAPI(title="smoothie", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    started = int(time.time())

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail), "invalid_request_error")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        """The one handler for a body that does not parse or validate: OpenAI's 400, naming the field."""
        first = error.errors()[0]
        if first.get("type") == "json_invalid":
            return bad_request(f"the request body is not valid JSON ({first.get('msg')})")
        location = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(location) or None
        return bad_request(f"{param}: {first['msg']}" if param else str(first["msg"]), param)

    @app.exception_handler(_Unauthorised)
    async def unauthorised(request: Request, error: _Unauthorised) -> JSONResponse:
        return error_response(401, "Incorrect API key provided: send 'Authorization: Bearer KEY'",
                              "invalid_request_error", code="invalid_api_key")  # fmt: skip

    async def authorised(request: Request) -> None:
        """A dependency: FastAPI runs it before it reads the body, so a wrong key is a 401 whatever the
        body."""
        if settings.api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), settings.api_key.encode()):
            raise _Unauthorised

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": settings.model_id, **scheduler.status()}

    @app.get("/v1/models", dependencies=[Depends(authorised)])
    async def models() -> dict[str, Any]:
        card = {"id": settings.model_id, "object": "model", "created": started, "owned_by": "smoothie"}
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions", response_model=None, dependencies=[Depends(authorised)])
    async def chat_completions(parsed: ChatCompletionRequest, request: Request) -> Any:
        if parsed.model_extra:
            log.info("ignored request fields: %s", ", ".join(sorted(parsed.model_extra)))
        job_or_error = await _admit(parsed, scheduler, settings)
        if isinstance(job_or_error, JSONResponse):
            return job_or_error
        job = job_or_error
        info = GateInfo(gate="", gate_reading=scheduler.backend.gate_reading, strategy="")
        if parsed.stream:
            include_usage = bool(parsed.stream_options and parsed.stream_options.include_usage)
            events = _sse(job, settings, info, include_usage)
            headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            return StreamingResponse(events, media_type="text/event-stream", headers=headers)
        return await _whole(job, request, settings, info)

    return app


async def _admit(
    parsed: ChatCompletionRequest, scheduler: Scheduler, settings: Settings
) -> Job | JSONResponse:
    """The request checked against the server's limits and queued, or the error response."""
    asked = parsed.max_completion_tokens or parsed.max_tokens
    if asked is not None and asked > settings.max_tokens:
        return bad_request(
            f"max_tokens {asked} is above this server's limit of {settings.max_tokens}", "max_tokens"
        )
    messages = [
        {"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in parsed.messages
    ]
    if not any(m["role"] == "user" and m["content"].strip() for m in messages):
        return bad_request("messages hold no user message with text", "messages")
    backend = scheduler.backend
    bias = {int(k): v for k, v in (parsed.logit_bias or {}).items()}
    if any(k >= backend.engine.vocab_size for k in bias):
        return bad_request(
            f"logit_bias holds a token id past the vocabulary ({backend.engine.vocab_size} ids)", "logit_bias"
        )
    request = backend_module.Request(messages, 1, parsed.temperature, parsed.top_p, parsed.seed, bias)
    prompt_tokens = len(await asyncio.to_thread(backend.prompt_ids, request))
    room = settings.context_length - prompt_tokens if settings.context_length else settings.max_tokens
    if room < 1 or (asked is not None and asked > room):
        return bad_request(
            f"the prompt ({prompt_tokens} tokens) plus max_tokens ({asked or 1}) is over the model's context "
            f"of {settings.context_length} tokens; shorten the messages or lower max_tokens",
            "messages",
        )
    # no max_tokens: the server's cap, or what the context has room for
    request = dataclasses.replace(request, max_tokens=asked or min(settings.max_tokens, room))
    job = Job(request, prompt_tokens, parsed.stop or (), loop=asyncio.get_running_loop())  # type: ignore[arg-type]
    try:
        return scheduler.submit(job)
    except QueueFull as full:
        return error_response(
            429,
            str(full),
            "rate_limit_error",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(full.retry_after)},
        )
    except Closed as closed:
        return error_response(503, str(closed), "server_error", code="shutting_down")


async def _whole(job: Job, request: Request, settings: Settings, info: GateInfo) -> Any:
    """Wait for the whole answer, cancelling it if the client goes away meanwhile."""
    parts: list[str] = []
    while True:
        try:
            event = await asyncio.wait_for(job.events.get(), settings.poll_seconds)
        except asyncio.TimeoutError:
            if await request.is_disconnected():
                job.cancel()
                return error_response(499, "the client closed the request", "invalid_request_error")
            continue
        if isinstance(event, Delta):
            parts.append(event.text)
        elif isinstance(event, Failed):
            return error_response(500, event.message, "server_error")
        elif isinstance(event, Done):
            info = info.model_copy(update={"gate": event.gate, "strategy": event.strategy})
            completion = ChatCompletion(
                id=job.id,
                created=job.created,
                model=settings.model_id,
                choices=[
                    Choice(
                        message=AssistantMessage(content="".join(parts)), finish_reason=event.finish_reason
                    )
                ],
                usage=_usage(event),
                smoothie=info,
            )
            return JSONResponse(completion.model_dump())


async def _sse(job: Job, settings: Settings, info: GateInfo, include_usage: bool) -> AsyncIterator[str]:
    """Server-sent events: a role chunk, content chunks, a finish chunk, [usage], then [DONE]. When the
    client disconnects Starlette cancels this generator, and the job is cancelled with it."""

    def chunk(delta: ChunkDelta, finish: str | None = None, **extra: Any) -> str:
        choice = ChunkChoice(delta=delta, finish_reason=finish)
        body = ChatCompletionChunk(
            id=job.id, created=job.created, model=settings.model_id, choices=[choice], **extra
        )
        return f"data: {body.model_dump_json(exclude_none=True)}\n\n"

    try:
        yield chunk(ChunkDelta(role="assistant", content=""))
        while True:
            event = await job.events.get()
            if isinstance(event, Delta):
                yield chunk(ChunkDelta(content=event.text))
            elif isinstance(event, Failed):
                error = {
                    "error": {"message": event.message, "type": "server_error", "param": None, "code": None}
                }
                yield f"data: {json.dumps(error)}\n\n"
                break
            elif isinstance(event, Done):
                info = info.model_copy(update={"gate": event.gate, "strategy": event.strategy})
                yield chunk(ChunkDelta(), event.finish_reason, smoothie=info)
                if include_usage:
                    body = ChatCompletionChunk(
                        id=job.id,
                        created=job.created,
                        model=settings.model_id,
                        choices=[],
                        usage=_usage(event),
                    )
                    yield f"data: {body.model_dump_json(exclude_none=True)}\n\n"
                break
        yield "data: [DONE]\n\n"
    finally:
        job.cancel()  # a no-op when the job is done; stops it when the client went away


def _usage(done: Done) -> Usage:
    return Usage(
        prompt_tokens=done.prompt_tokens,
        completion_tokens=done.completion_tokens,
        total_tokens=done.prompt_tokens + done.completion_tokens,
    )
