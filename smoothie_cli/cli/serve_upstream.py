"""`smoothie serve --upstream URL`: the draft's gate here, answers from another OpenAI-compatible server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from smoothie_cli import ui
from smoothie_cli.errors import SmoothieError


def upstream_smoothing(
    target: str,
    config: Path | None,
    scales: str | None,
    min_scale: float,
    smoothness: float,
    mode: str,
    processor: bool,
) -> tuple[dict[str, float] | None, dict[str, Any] | None, str]:
    """(logit_bias, vllm_xargs, label): how the upstream is asked to smooth. With `processor` the upstream
    runs smoothie's vLLM logits processor (its scales are the server's), so only the setting travels; else
    bias mode travels as a logit_bias over the target's vocabulary; scale and lower need the processor."""
    from smoothie_cli.smoothing.runtime import server_smoothing

    def analysis() -> dict[str, Any]:
        from smoothie_cli.config import load_config
        from smoothie_cli.models import resolve_model
        from smoothie_cli.smoothing.runtime import analysis_for

        assert scales is not None
        return analysis_for(resolve_model(target), load_config(config), scales)

    try:
        asked = server_smoothing(None if scales is None else analysis, min_scale, smoothness, mode, processor)
    except SmoothieError as error:
        if error.setting != "mode":
            raise
        raise SmoothieError(f"--mode: {error.message}: --upstream-processor") from None
    return asked.logit_bias, asked.xargs, asked.label


def run_gateway(
    *,
    upstream: str,
    upstream_key: str | None,
    upstream_timeout: float,
    draft: str | None,
    gate: bool,
    gate_threshold: str,
    gate_model: str,
    draft_quant: str,
    device: str,
    instruction: str | None,
    on_untagged: str,
    refusal: str | None,
    smoothing: tuple[dict[str, float] | None, dict[str, Any] | None, str],
    model_name: str | None,
    api_key: str | None,
    max_body: int,
    drain_timeout: float,
    sock: Any,
    as_json: bool,
    json_line: Any,
    signals: Any,
) -> None:
    """Load the gate, then serve the gateway on `sock` until SIGINT/SIGTERM."""
    import uvicorn

    from smoothie_cli.cautious.prompts import DEFAULT_REFUSAL
    from smoothie_cli.serve.upstream import DraftGate, GatewaySettings, create_gateway, normalise_upstream

    base = normalise_upstream(upstream)
    if upstream_timeout <= 0:
        raise SmoothieError(f"--upstream-timeout must be above 0 seconds, not {upstream_timeout}")
    reader = None
    if draft is not None and gate:
        with ui.progress_bar(not as_json) as progress:
            reader = DraftGate.load(
                draft, threshold=gate_threshold, device=device, draft_quant=draft_quant,
                gate_model=gate_model, instruction=instruction, progress=progress,
            )  # fmt: skip
            reader(["Hello"])  # warm up: first-call costs do not land on the first client
    bias, xargs, label = smoothing
    reading = reader.reading if reader else ("off: no draft" if draft is None else "off: --no-gate")
    settings = GatewaySettings(
        upstream=base, upstream_key=upstream_key, api_key=api_key, model_id=model_name,
        refusal=refusal or DEFAULT_REFUSAL, refuse_untagged=on_untagged == "refuse", gate_reading=reading,
        logit_bias=bias, xargs=xargs, timeout=upstream_timeout, max_body_bytes=max_body,
    )  # fmt: skip

    def gate_fn(texts: Any) -> list[str]:
        return reader(texts) if reader else ["none"] * len(texts)

    def usage(messages: Any, text: str) -> tuple[int, int]:
        return (reader.count_tokens(messages), reader.count_text(text)) if reader else (0, 0)

    app = create_gateway(gate_fn, settings, usage)
    host, port = sock.getsockname()[:2]
    where = f"http://{host if ':' not in host else f'[{host}]'}:{port}/v1"
    startup = {"url": where, "upstream": base, "draft": draft, "gate_reading": reading, "smoothing": label,
               "model": model_name, "auth": api_key is not None}  # fmt: skip
    if as_json:
        json_line({"event": "listening", **startup})
    else:
        ui.note(f"upstream {base} · gate: {reading} · smoothing: {label}")
        ui.out.print(f"smoothie serve: listening on {where}" + (" (Bearer key required)" if api_key else ""))
        sys.stdout.flush()
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level="warning", access_log=False, timeout_graceful_shutdown=drain_timeout, lifespan="on"
        )
    )
    with signals():
        server.run(sockets=[sock])
    counts = app.state.counts.as_dict()
    if as_json:
        json_line({"event": "stopped", **counts})
    else:
        ui.out.print("smoothie serve: stopped (" + ", ".join(f"{v} {k}" for k, v in counts.items()) + ")")
