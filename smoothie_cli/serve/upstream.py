"""The gate in front of any OpenAI-compatible server (vLLM, llama.cpp's server, Ollama, SGLang).

`smoothie serve --upstream URL`: the draft reads the gate of each conversation here; a refused one is
answered here (`finish_reason: content_filter`) and never reaches the upstream; a safe one is forwarded as
the client sent it, plus the smoothing the upstream can apply (an additive `logit_bias`, or `vllm_xargs`
for smoothie's logits processor inside vLLM). Streams are relayed chunk by chunk as they arrive; upstream
errors come back as OpenAI error objects; an upstream that cannot be reached is a 502, one that does not
answer in time a 504; a client that goes away closes the upstream request (vLLM then aborts it). Nothing
but the gate lives here, so replicas behind a load balancer need no shared state.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from smoothie_cli.errors import SmoothieError
from smoothie_cli.serve.app import BodyLimit, bad_request, error_response

# the gate of a batch of conversations ({"role", "content"} messages): toxic / safe / untagged / none each
GateFn = Callable[[Sequence[Sequence[dict[str, str]]]], list[str]]


class GateBatcher:
    """Reads the gate of concurrent requests together, as serve's continuous batch does: while one read runs,
    arriving conversations queue, and the next read takes all of them (up to `max_batch`) in one batched
    prefill. One request alone is read at once; N at a time cost a few batched reads, not N reads in a row
    behind the reader's lock. A request whose client left is dropped from its batch's answers."""

    def __init__(self, gate: GateFn, max_batch: int = 16) -> None:
        self.gate, self.max_batch = gate, max_batch
        self.pending: list[tuple[Sequence[dict[str, str]], asyncio.Future[str]]] = []
        self.reading: asyncio.Task[None] | None = None

    async def read(self, conversation: Sequence[dict[str, str]]) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.pending.append((conversation, future))
        if self.reading is None or self.reading.done():
            self.reading = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
            try:
                verdicts = await asyncio.to_thread(self.gate, [conversation for conversation, _ in batch])
            except Exception as error:  # every waiting request answers with the reader's error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), verdict in zip(batch, verdicts, strict=True):
                if not future.done():
                    future.set_result(verdict)


# ---- the gate ------------------------------------------------------------------------------------------


def gate_conversation(messages: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """The conversation the gate reads: every message with text (the system message, the earlier turns,
    the last message), as local `serve` and `speculate` read it (cautious/conversation.py renders it)."""
    roles = {"developer": "system", "function": "tool"}
    conversation = []
    for message in messages:
        text = _text(message.get("content"))
        role = roles.get(str(message.get("role")), str(message.get("role")))
        if text.strip() and role in ("system", "user", "assistant", "tool"):
            conversation.append({"role": role, "content": text})
    return conversation if any(m["role"] == "user" for m in conversation) else []


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


@dataclass
class DraftGate:
    """The draft's gate reader, loaded once: `__call__` reads a batch of texts (thread-safe, one read at a
    time) through the same GateReader that `speculate`, `serve` and `eval` use."""

    reader: Any  # cautious.gate.GateReader
    tokenizer: Any
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def reading(self) -> str:
        return self.reader.summary()

    @classmethod
    def load(
        cls,
        spec: str,
        *,
        threshold: str = "auto",
        device: str = "auto",
        draft_quant: str = "auto",
        gate_model: str = "draft",
        instruction: str | None = None,
        progress: Any = None,
    ) -> DraftGate:
        from smoothie_cli.cautious.loading import load_draft
        from smoothie_cli.models import loading, resolve_model
        from smoothie_cli.progress import no_progress

        progress = progress or no_progress
        device = loading.resolve_device(device)
        tokenizer = loading.load_tokenizer(resolve_model(spec), progress)
        draft = load_draft(spec, tokenizer, device, "auto", draft_quant, progress, threshold, gate_model)
        return cls(draft.reader(tokenizer, instruction=instruction), tokenizer)

    def __call__(self, conversations: Sequence[Sequence[dict[str, str]]]) -> list[str]:
        with self._lock:
            return list(self.reader.read(list(conversations)))

    def count_tokens(self, messages: Sequence[dict[str, Any]]) -> int:
        """The conversation's prompt tokens under the draft's chat template (its family's)."""
        from smoothie_cli.generation.prompts import chat_prompt, encode

        plain = [{"role": m.get("role", "user"), "content": _text(m.get("content"))} for m in messages]
        return len(encode(self.tokenizer, chat_prompt(self.tokenizer, plain)))

    def count_text(self, text: str) -> int:
        from smoothie_cli.generation.prompts import encode

        return len(encode(self.tokenizer, text))


# ---- settings ------------------------------------------------------------------------------------------


@dataclass
class GatewaySettings:
    upstream: str  # the upstream's base URL, up to and including /v1
    upstream_key: str | None = None
    api_key: str | None = None  # what clients of the gateway must send
    model_id: str | None = None  # replaces the request's model when set
    refusal: str = "I can't help with that request."
    refuse_untagged: bool = False
    gate_reading: str = "off"
    logit_bias: dict[str, float] | None = None  # bias-mode smoothing, merged under the client's own
    xargs: dict[str, Any] | None = None  # smoothie's vLLM processor settings, merged under the client's
    timeout: float = 600.0  # seconds the upstream may take between two bytes of an answer
    connect_timeout: float = 10.0
    max_body_bytes: int = 1 << 20
    poll_seconds: float = 0.25


def normalise_upstream(url: str) -> str:
    """The base URL requests go to: 'http://host:8000' and 'http://host:8000/v1/' both mean .../v1."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise SmoothieError(f"upstream '{url}' is not an http(s) URL; pass e.g. http://127.0.0.1:8000/v1")
    return url if url.endswith("/v1") else url + "/v1"


# ---- the app -------------------------------------------------------------------------------------------


@dataclass
class Counts:
    requests: int = 0
    refused: int = 0
    forwarded: int = 0
    upstream_errors: int = 0
    cancelled: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def create_gateway(
    gate: GateFn, settings: GatewaySettings, count_tokens: Callable[..., tuple[int, int]] | None = None
) -> FastAPI:
    """The FastAPI app of the gateway. `gate` reads conversations (`gate_conversation`);
    `count_tokens(messages, refusal)` gives (prompt, completion) token counts for a refused answer's usage."""
    state: dict[str, Any] = {}
    counts = Counts()
    batcher = GateBatcher(gate)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx2.Timeout(settings.timeout, connect=settings.connect_timeout)
        limits = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)
        async with httpx2.AsyncClient(timeout=timeout, limits=limits, trust_env=False) as client:
            state["client"] = client
            yield

    app = FastAPI(
        title="smoothie gateway", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.state.counts = counts

    def authorised(request: Request) -> JSONResponse | None:
        if settings.api_key is None:
            return None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), settings.api_key.encode()):
            return error_response(401, "Incorrect API key provided: send 'Authorization: Bearer KEY'",
                                  "invalid_request_error", code="invalid_api_key")  # fmt: skip
        return None

    def upstream_headers() -> dict[str, str]:
        return {"Authorization": f"Bearer {settings.upstream_key}"} if settings.upstream_key else {}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "upstream": settings.upstream, "gate_reading": settings.gate_reading,
                **counts.as_dict()}  # fmt: skip

    @app.get("/v1/models", response_model=None)
    async def models(request: Request) -> Response:
        if (denied := authorised(request)) is not None:
            return denied
        try:
            response = await state["client"].get(f"{settings.upstream}/models", headers=upstream_headers())
        except httpx2.HTTPError as error:
            return _unreachable(settings, error)
        return Response(response.content, response.status_code, media_type="application/json")

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> Response:
        if (denied := authorised(request)) is not None:
            return denied
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            return bad_request(f"the request body is not valid JSON ({error})")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return bad_request("messages: a list of messages is required", "messages")
        messages = [m for m in body["messages"] if isinstance(m, dict)]
        conversation = gate_conversation(messages)
        if not conversation:
            return bad_request("messages hold no user message with text", "messages")
        counts.requests += 1
        verdict = await batcher.read(conversation)
        refused = verdict == "toxic" or (verdict == "untagged" and settings.refuse_untagged)
        if refused:
            counts.refused += 1
            usage = count_tokens(messages, settings.refusal) if count_tokens else (0, 0)
            return _refusal(body, settings, verdict, usage)
        counts.forwarded += 1
        return await _forward(request, _with_smoothing(body, settings), state["client"], settings,
                              upstream_headers(), verdict, counts)  # fmt: skip

    return app


def _with_smoothing(body: dict[str, Any], settings: GatewaySettings) -> dict[str, Any]:
    """The request as forwarded: the model name, then the server's smoothing under the client's own."""
    body = dict(body)
    if settings.model_id:
        body["model"] = settings.model_id
    if settings.logit_bias:
        body["logit_bias"] = {**settings.logit_bias, **(body.get("logit_bias") or {})}
    if settings.xargs:
        body["vllm_xargs"] = {**settings.xargs, **(body.get("vllm_xargs") or {})}
    return body


def _refusal(body: dict[str, Any], settings: GatewaySettings, gate: str, usage: tuple[int, int]) -> Response:
    """The refusal as an ordinary completion (or stream) with finish_reason content_filter."""
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    model = settings.model_id or body.get("model") or "smoothie"
    info = {"gate": gate, "gate_reading": settings.gate_reading, "strategy": "refused"}
    totals = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    headers = {"X-Smoothie-Gate": gate}
    if not body.get("stream"):
        message = {"role": "assistant", "content": settings.refusal}
        choice = {"index": 0, "message": message, "finish_reason": "content_filter", "logprobs": None}
        document = {"id": ident, "object": "chat.completion", "created": created, "model": model,
                    "choices": [choice], "usage": totals, "smoothie": info}  # fmt: skip
        return JSONResponse(document, headers=headers)

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        document = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [choice], **extra}  # fmt: skip
        return f"data: {json.dumps(document, ensure_ascii=False)}\n\n"

    events = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": settings.refusal}),
        chunk({}, "content_filter", smoothie=info),
    ]
    if (body.get("stream_options") or {}).get("include_usage"):
        final = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [], "usage": totals}  # fmt: skip
        events.append(f"data: {json.dumps(final)}\n\n")
    events.append("data: [DONE]\n\n")

    async def stream() -> AsyncIterator[str]:
        for event in events:
            yield event

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={**headers, "Cache-Control": "no-cache"}
    )


async def _forward(
    request: Request,
    body: dict[str, Any],
    client: httpx2.AsyncClient,
    settings: GatewaySettings,
    headers: dict[str, str],
    gate: str,
    counts: Counts,
) -> Response:
    """Send the request upstream and relay its answer (streamed as it comes when the client asked)."""
    outgoing = client.build_request(
        "POST", f"{settings.upstream}/chat/completions", json=body, headers=headers
    )
    sending = asyncio.ensure_future(client.send(outgoing, stream=True))
    try:
        upstream = await _unless_disconnected(sending, request, settings.poll_seconds)
    except httpx2.HTTPError as error:
        counts.upstream_errors += 1
        return _unreachable(settings, error)
    if upstream is None:
        counts.cancelled += 1
        return error_response(499, "the client closed the request", "invalid_request_error")
    relayed = {"X-Smoothie-Gate": gate}
    if upstream.status_code >= 400:
        counts.upstream_errors += 1
        content = await upstream.aread()
        await upstream.aclose()
        return _upstream_error(upstream.status_code, content)
    if body.get("stream"):
        return StreamingResponse(
            _relay(upstream, counts),
            media_type=upstream.headers.get("content-type", "text/event-stream"),
            headers={**relayed, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    reading = asyncio.ensure_future(upstream.aread())
    try:
        content = await _unless_disconnected(reading, request, settings.poll_seconds)
    except httpx2.HTTPError as error:
        counts.upstream_errors += 1
        return _unreachable(settings, error)
    finally:
        await _close(upstream)
    if content is None:
        counts.cancelled += 1
        return error_response(499, "the client closed the request", "invalid_request_error")
    try:
        document = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return error_response(502, "the upstream answered with something that is not JSON", "upstream_error")
    if isinstance(document, dict):
        document["smoothie"] = {"gate": gate, "gate_reading": settings.gate_reading, "strategy": "upstream"}
    return JSONResponse(document, headers=relayed)


async def _unless_disconnected(task: asyncio.Future[Any], request: Request, poll: float) -> Any:
    """The task's result, or None after cancelling it when the client goes away first."""
    while True:
        done, _ = await asyncio.wait({task}, timeout=poll)
        if done:
            return task.result()
        if await request.is_disconnected():
            task.cancel()
            return None


async def _relay(upstream: httpx2.Response, counts: Counts) -> AsyncIterator[bytes]:
    """The upstream's bytes as they arrive. When the client disconnects, Starlette cancels this generator
    and the upstream connection is closed, which vLLM takes as an abort."""
    finished = False
    try:
        async for piece in upstream.aiter_raw():
            yield piece
        finished = True
    except httpx2.HTTPError as error:
        counts.upstream_errors += 1
        message = f"the upstream stopped mid-answer ({type(error).__name__})"
        error_body = {"message": message, "type": "upstream_error", "param": None, "code": "upstream_failed"}
        yield f"data: {json.dumps({'error': error_body})}\n\n".encode()
        finished = True
    finally:
        if not finished:
            counts.cancelled += 1
        await _close(upstream)


async def _close(upstream: httpx2.Response) -> None:
    with anyio.CancelScope(shield=True):
        await upstream.aclose()


def _unreachable(settings: GatewaySettings, error: httpx2.HTTPError) -> JSONResponse:
    name = type(error).__name__
    if isinstance(error, httpx2.TimeoutException):
        message = f"the upstream {settings.upstream} did not answer in time ({name})"
        return error_response(504, message, "upstream_error", code="upstream_timeout")
    message = f"the upstream {settings.upstream} cannot be reached ({name}: {error})"
    return error_response(502, message, "upstream_error", code="upstream_unreachable")


def _upstream_error(status: int, content: bytes) -> JSONResponse:
    """An upstream error in OpenAI's shape: its message kept, a 4xx kept, a 5xx reported as 502."""
    message, kind, param, code = f"the upstream answered {status}", "upstream_error", None, None
    try:
        document = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        document = None
    if isinstance(document, dict):
        inner = document.get("error") if isinstance(document.get("error"), dict) else document
        message = str(inner.get("message") or inner.get("detail") or message)
        kind = str(inner.get("type") or kind)
        param, code = inner.get("param"), inner.get("code")
    elif content:
        message = f"{message}: {content[:500].decode('utf-8', 'replace')}"
    if status >= 500:
        return error_response(502, f"upstream error {status}: {message}", "upstream_error", param, code)
    return error_response(status, message, kind, param, code if isinstance(code, str) else None)
