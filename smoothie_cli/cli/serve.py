"""`smoothie serve`: an OpenAI-compatible chat-completions endpoint — gated, smoothed, speculative."""

from __future__ import annotations

import ipaddress
import json
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from smoothie_cli import ui
from smoothie_cli.cli.options import (
    ConfigOpt,
    DeviceOpt,
    DraftQuantOpt,
    DtypeOpt,
    GateModelOpt,
    GateThresholdOpt,
    InstructionOpt,
    MinScaleOpt,
    ModeOpt,
    OnUntaggedOpt,
    RefusalOpt,
    ScalesOpt,
    SmoothnessOpt,
    TargetEngineOpt,
    TargetOpt,
)
from smoothie_cli.cli.speculate import DEFAULT_DRAFT, DEFAULT_TARGET
from smoothie_cli.errors import SmoothieError

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(host: str, api_key: str | None) -> None:
    """Only loopback without a key: anything else exposes the models to the network."""
    if not is_loopback(host) and not api_key:
        raise SmoothieError(
            f"--host {host} is reachable from other machines; give --api-key KEY (or SMOOTHIE_API_KEY) so "
            "clients must send 'Authorization: Bearer KEY', or bind 127.0.0.1"
        )


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (bound here so port 0 picks a free port we can print)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise SmoothieError(
            f"cannot listen on {host}:{port} ({error.strerror}); choose another --port"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(
    target: TargetOpt = DEFAULT_TARGET,
    draft: Annotated[
        str, typer.Option("--draft", help="Gate and draft model, PEFT adapter, or 'none' (no gate).")
    ] = DEFAULT_DRAFT,
    host: Annotated[str, typer.Option("--host", help="Address to bind; not loopback needs --api-key.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="Port (0: any free port, printed).")] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", envvar="SMOOTHIE_API_KEY", help="Clients must send 'Authorization: Bearer KEY'."
        ),
    ] = None,
    model_name: Annotated[
        str | None,
        typer.Option("--model-name", help="Model id in responses and /v1/models (default: target)."),
    ] = None,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", help="Cap on a request's max_tokens (also its default).")
    ] = 512,
    max_body: Annotated[int, typer.Option("--max-body", help="Largest request body in bytes.")] = 1 << 20,
    max_queue: Annotated[
        int, typer.Option("--max-queue", help="Requests that may wait; more get 429 with Retry-After.")
    ] = 64,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Requests gated and decoded together.")] = 16,
    batch_wait: Annotated[
        float, typer.Option("--batch-wait", help="Seconds to gather requests that arrive together.")
    ] = 0.02,
    drain_timeout: Annotated[
        float,
        typer.Option("--drain-timeout", help="On SIGINT/SIGTERM, seconds to finish in-flight requests."),
    ] = 120.0,
    gate: Annotated[
        bool, typer.Option("--gate/--no-gate", help="Let the draft's tag refuse toxic requests.")
    ] = True,
    gate_threshold: GateThresholdOpt = "auto",
    gate_model: GateModelOpt = "draft",
    on_untagged: OnUntaggedOpt = "continue",
    refusal: RefusalOpt = None,
    instruction: InstructionOpt = None,
    lookup: Annotated[
        bool, typer.Option("--lookup/--no-lookup", help="Prompt-lookup guesses next to the draft's.")
    ] = True,
    scales: ScalesOpt = None,
    min_scale: MinScaleOpt = 0.5,
    smoothness: SmoothnessOpt = 10.0,
    mode: ModeOpt = "scale",
    config: ConfigOpt = None,
    draft_quant: DraftQuantOpt = "auto",
    target_engine: TargetEngineOpt = "auto",
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    log_prompts: Annotated[
        bool, typer.Option("--log-prompts", help="Log each request's messages (off: never logged).")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Startup info and one line per request as JSON on stdout.")
    ] = False,
    upstream: Annotated[
        str | None,
        typer.Option(
            "--upstream", help="Gate here, answer from this OpenAI-compatible server (e.g. vLLM's .../v1)."
        ),
    ] = None,
    upstream_key: Annotated[
        str | None,
        typer.Option("--upstream-key", envvar="SMOOTHIE_UPSTREAM_KEY", help="Bearer key for the upstream."),
    ] = None,
    upstream_processor: Annotated[
        bool,
        typer.Option(
            "--upstream-processor", help="The upstream vLLM runs smoothie's processor: send it the setting."
        ),
    ] = False,
    upstream_timeout: Annotated[
        float, typer.Option("--upstream-timeout", help="Seconds the upstream may pause mid-answer.")
    ] = 600.0,
) -> None:
    """Serve the OpenAI chat-completions API: the draft gates every request, smoothing applies to every
    answer, and the target answers (speculation for a lone request, batched decoding for many). With
    --upstream, safe requests are answered by that server instead (the target is not loaded)."""
    import uvicorn

    from smoothie_cli.cautious.gate import GatePolicy
    from smoothie_cli.cautious.loading import CautiousSettings, Smoothing, open_cautious
    from smoothie_cli.cautious.prompts import DEFAULT_REFUSAL
    from smoothie_cli.generation.engine import Decoding
    from smoothie_cli.serve.app import Settings, create_app
    from smoothie_cli.serve.backend import Backend
    from smoothie_cli.serve.scheduler import Scheduler

    check_binding(host, api_key)
    for name, value in (("--max-tokens", max_tokens), ("--max-body", max_body), ("--max-queue", max_queue),
                        ("--max-batch", max_batch)):  # fmt: skip
        if value < 1:
            raise SmoothieError(f"{name} must be at least 1, not {value}")
    draft_spec = None if draft.lower() == "none" else draft
    if upstream is not None:
        from smoothie_cli.cli.serve_upstream import run_gateway, upstream_smoothing

        smoothing = upstream_smoothing(target, config, scales, min_scale, smoothness, mode,
                                       upstream_processor)  # fmt: skip
        run_gateway(upstream=upstream, upstream_key=upstream_key, upstream_timeout=upstream_timeout,
                    draft=draft_spec, gate=gate, gate_threshold=gate_threshold, gate_model=gate_model,
                    draft_quant=draft_quant, device=device, instruction=instruction, on_untagged=on_untagged,
                    refusal=refusal, smoothing=smoothing, model_name=model_name, api_key=api_key,
                    max_body=max_body, drain_timeout=drain_timeout, sock=bind(host, port), as_json=as_json,
                    json_line=ui.Output.of(True, lines=True).record,
                    signals=_signals_end_quietly)  # fmt: skip
        return
    settings = CautiousSettings(
        target, draft_spec, device=device, dtype=dtype, draft_quant=draft_quant, gate=gate,
        target_engine=target_engine, batch_rows=max_batch,
        gate_threshold=gate_threshold, gate_model=gate_model, instruction=instruction,
        policy=GatePolicy(refusal or DEFAULT_REFUSAL, on_untagged),  # type: ignore[arg-type]
        decoding=Decoding(lookup=lookup), smoothing=Smoothing(scales, min_scale, smoothness, mode, config),
    )  # fmt: skip
    sock = bind(host, port)
    output = ui.Output.of(as_json, lines=True)
    with output.progress(not as_json) as progress:
        decoder, info = open_cautious(settings, progress)
        backend = Backend(decoder.engine, decoder.gate, model_name or info["target"], lookup)
        progress("warming up", 0, 1)
        backend.warm_up()
        progress("warming up", 1, 1)
    scheduler = Scheduler(backend, max_queue=max_queue, max_batch=max_batch, batch_wait=batch_wait,
                          log=_logger(output), log_prompts=log_prompts)  # fmt: skip
    context = decoder.engine.context_length
    app = create_app(scheduler, Settings(backend.model_id, api_key, max_tokens, max_body, context))
    limits = dict(max_tokens=max_tokens, max_queue=max_queue, max_batch=max_batch, auth=api_key is not None)
    _announce(sock, backend, info | limits, output)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=drain_timeout)  # fmt: skip
    server = uvicorn.Server(config)
    with _signals_end_quietly():
        server.run(sockets=[sock])  # uvicorn turns SIGINT/SIGTERM into a graceful drain
    output.record({"event": "stopped", **scheduler.status()}, lambda status: f"smoothie serve: stopped "
                  f"({_counts(status)})")  # fmt: skip


def _announce(sock: socket.socket, backend: Any, info: dict[str, Any], output: Any) -> None:
    """Where the server listens and how it answers: a JSON line, or two human lines."""
    bound_host, bound_port = sock.getsockname()[:2]
    where = f"http://{bound_host if ':' not in bound_host else f'[{bound_host}]'}:{bound_port}/v1"
    startup = {**info, "url": where, "model": backend.model_id, "gate_reading": backend.gate_reading}
    if not output.human:
        output.record({"event": "listening", **startup})
        return
    label = info["smoothing"]["label"]
    output.note(f"model {backend.model_id} · gate: {backend.gate_reading} · smoothing: {label}")
    output.text(f"smoothie serve: listening on {where}" + (" (Bearer key required)" if info["auth"] else ""))
    sys.stdout.flush()


@contextmanager
def _signals_end_quietly() -> Iterator[None]:
    """uvicorn re-raises the signal that stopped it once it has drained, to the handler it found: make that
    handler a no-op, so a drained server reports and exits 0 instead of dying by the signal."""
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _counts(status: dict[str, Any]) -> str:
    return ", ".join(f"{value} {name}" for name, value in status.items() if name not in ("queued", "running"))


def _logger(output: Any) -> Any:
    """The scheduler's log: one JSON line per request, or a line on stderr for people."""

    def log(record: dict[str, Any]) -> None:
        if not output.human:
            output.record(record)
        elif "error" in record:
            output.error(f"{record['id']}: {record['error']}")
        else:
            tokens = f"{record['prompt_tokens']}+{record['completion_tokens']} tokens"
            line = (f"{record['id']} {record['finish_reason']} gate={record['gate']} {record['strategy']} "
                    f"{tokens} {record['seconds']:.2f}s")  # fmt: skip
            if "messages" in record:
                line += " " + json.dumps(record["messages"], ensure_ascii=False)
            output.note(line)

    return log
