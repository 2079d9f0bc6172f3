"""`smoothie serve` with the real `openai` client against a server started here on 127.0.0.1 (tiny models)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
import pytest
import uvicorn

from smoothie_cli.cautious.gate import GateReader, tag_margins
from smoothie_cli.cautious.loading import load_for_speculation
from smoothie_cli.cli.serve import bind
from smoothie_cli.generation.batched import decode_batch
from smoothie_cli.generation.engine import Engine
from smoothie_cli.serve.app import Settings, create_app
from smoothie_cli.serve.backend import Backend
from smoothie_cli.serve.scheduler import Scheduler, StopScanner
from smoothie_cli.unicode_blocks import CJK
from smoothie_cli.vocab.scripts import TargetScript

REPO = Path(__file__).resolve().parents[1]
SAFE = "hello there"
BUSY = [f"busy {n}" for n in range(3)]
QUESTIONS = [f"question number {n}" for n in range(6)]
TOPICS = [f"tell me about {word}" for word in ("cats", "rain", "maps", "tea")]
ASKED = [SAFE, "hi", "short", *BUSY, *QUESTIONS, *TOPICS]  # every prompt the tests send
# the random draft's "toxic" prompt: the candidate with the highest tag margin; the gate's threshold sits
# between it and every prompt the tests ask
# (a random model's margins barely move with short prompts; long repetitive ones move them most)
CANDIDATES = [word * k for word in ("hurt ", "kill ", "weapon ", "malware ") for k in (10, 30, 60)]


@pytest.fixture(scope="module")
def models(tiny_qwen) -> dict[str, Any]:
    target, tokenizer, draft, _ = load_for_speculation(
        str(tiny_qwen()), str(tiny_qwen(tied=True)), device="cpu", draft_quant="none", gate_model="draft"
    )
    asked = tag_margins(draft.model, tokenizer, ASKED)
    candidates = tag_margins(draft.model, tokenizer, CANDIDATES)
    top = max(range(len(CANDIDATES)), key=candidates.__getitem__)
    assert candidates[top] > max(asked), "no candidate prompt reads as more toxic than the asked ones"
    return {
        "target": target,
        "tokenizer": tokenizer,
        "draft": draft.model,
        "threshold": (candidates[top] + max(asked)) / 2,
        "toxic": CANDIDATES[top],
        "safe": SAFE,
    }


def make_backend(
    models: dict[str, Any],
    cls: type[Backend] = Backend,
    gate: bool = True,
    processors: Any = (),
    **kwargs: Any,
) -> Backend:
    engine = Engine(models["target"], models["tokenizer"], models["draft"], processors=processors)
    reader = GateReader(models["draft"], models["tokenizer"], threshold=models["threshold"]) if gate else None
    return cls(engine, reader, model_id="tiny", **kwargs)


@contextmanager
def serving(backend: Backend, scheduler: dict[str, Any] | None = None, **settings: Any) -> Iterator[Any]:
    """A real uvicorn server on 127.0.0.1 (a free port) in a thread; yields (base url, scheduler)."""
    queue = Scheduler(backend, **(scheduler or {}))
    options = {"max_tokens": 200, "context_length": 256, **settings}
    with running(create_app(queue, Settings("tiny", **options))) as url:
        yield url, queue
    assert not queue.thread.is_alive()  # the worker stopped with the server


@contextmanager
def running(app: Any) -> Iterator[str]:
    """`app` served by uvicorn on 127.0.0.1 (a free port) in a thread; yields its base url."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def server(models) -> Iterator[tuple[str, Scheduler]]:
    with serving(make_backend(models)) as running:
        yield running


class Raw:
    """A plain HTTP reply (stdlib urllib): for what the OpenAI client would not send."""

    def __init__(self, status: int, headers: Any, text: str) -> None:
        self.status_code, self.headers, self.text = status, headers, text

    def json(self) -> Any:
        return json.loads(self.text)


def http(url: str, body: Any = None, raw: bytes | None = None) -> Raw:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return Raw(reply.status, reply.headers, reply.read().decode())
    except urllib.error.HTTPError as error:
        return Raw(error.code, error.headers, error.read().decode())


def client(url: str, key: str = "none", retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=retries, timeout=60)


def ask(url: str, prompt: str, key: str = "none", **kwargs: Any) -> Any:
    options = {"max_tokens": 12, "temperature": 0, **kwargs}
    return client(url, key).chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": prompt}], **options
    )


def target_alone(models: dict[str, Any], prompt: str, max_tokens: int) -> str:
    """The target's own greedy answer, decoded directly (no server, no draft)."""
    return models["tokenizer"].decode(target_tokens(models, prompt, max_tokens), skip_special_tokens=True)


def target_tokens(models: dict[str, Any], prompt: str, max_tokens: int) -> list[int]:
    tokenizer = models["tokenizer"]
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
    )
    encoded = tokenizer(ids, return_tensors="pt", add_special_tokens=False)
    from smoothie_cli.generation.prompts import stop_ids

    return decode_batch(
        models["target"],
        encoded["input_ids"],
        encoded["attention_mask"],
        max_new_tokens=max_tokens,
        eos_ids=stop_ids(models["target"], tokenizer),
    )[0]


def test_chat_answers_with_the_targets_text_and_usage(server, models) -> None:
    url, _ = server
    assert [m.id for m in client(url).models.list()] == ["tiny"]
    reply = ask(url, models["safe"], max_tokens=12)
    choice = reply.choices[0]
    assert choice.message.content == target_alone(models, models["safe"], 12)
    assert choice.finish_reason == "length" and reply.usage.completion_tokens == 12
    template = models["tokenizer"].apply_chat_template(
        [{"role": "user", "content": models["safe"]}], add_generation_prompt=True, tokenize=False
    )
    prompt_ids = models["tokenizer"](template, add_special_tokens=False)["input_ids"]
    assert reply.usage.prompt_tokens == len(prompt_ids)
    assert reply.id.startswith("chatcmpl-") and reply.model == "tiny" and reply.created > 0
    assert reply.smoothie["gate"] == "safe" and reply.smoothie["strategy"] == "speculative"
    assert reply.smoothie["gate_reading"].startswith("calibrated margin >")


def test_streaming_sends_the_same_text_and_ends_with_done(server, models) -> None:
    url, _ = server
    whole = ask(url, models["safe"]).choices[0].message.content
    stream = ask(url, models["safe"], stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole and len([c for c in chunks if c.choices]) > 2  # streamed in pieces
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 12
    raw = http(
        f"{url}/chat/completions",
        {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "stream": True},
    ).text
    assert raw.rstrip().endswith("data: [DONE]") and raw.count("data: ") >= 3


def test_a_toxic_request_is_refused_and_never_reaches_the_target(server, models) -> None:
    url, _ = server
    calls = []
    hook = models["target"].register_forward_hook(lambda *_: calls.append(1))
    try:
        reply = ask(url, models["toxic"])
        streamed = list(ask(url, models["toxic"], stream=True))
    finally:
        hook.remove()
    assert reply.choices[0].message.content == "I can't help with that request."
    assert reply.choices[0].finish_reason == "content_filter"
    assert reply.smoothie["gate"] == "toxic" and reply.smoothie["strategy"] == "refused"
    assert "calibrated margin" in reply.smoothie["gate_reading"]
    assert streamed[-1].choices[0].finish_reason == "content_filter"
    assert calls == []  # the target never ran


def test_stop_strings_cut_the_answer(server, models) -> None:
    url, _ = server
    text = ask(url, models["safe"], max_tokens=16).choices[0].message.content
    stop = text[5:8]
    reply = ask(url, models["safe"], max_tokens=16, stop=[stop, "never-written"])
    assert reply.choices[0].message.content == text[: text.find(stop)]
    assert reply.choices[0].finish_reason == "stop"
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in ask(url, models["safe"], max_tokens=16, stop=stop, stream=True)
    )
    assert streamed == text[: text.find(stop)]


def test_sampling_with_a_seed_is_repeatable_also_under_load(server, models) -> None:
    url, _ = server
    first = ask(url, models["safe"], temperature=1.0, seed=11).choices[0].message.content
    with_others: list[str] = []
    others = [threading.Thread(target=ask, args=(url, prompt)) for prompt in BUSY]
    for thread in others:
        thread.start()
    with_others.append(ask(url, models["safe"], temperature=1.0, seed=11).choices[0].message.content)
    for thread in others:
        thread.join()
    other_seed = ask(url, models["safe"], temperature=1.0, seed=12).choices[0].message.content
    assert with_others == [first] and other_seed != first


def test_concurrent_clients_are_batched_and_get_their_own_answers(server, models) -> None:
    url, queue = server
    prompts = QUESTIONS
    alone = [ask(url, p).choices[0].message.content for p in prompts]
    answers: dict[int, str] = {}
    barrier = threading.Barrier(len(prompts))

    def one(n: int) -> None:
        barrier.wait()
        answers[n] = ask(url, prompts[n]).choices[0].message.content

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [answers[n] for n in range(len(prompts))] == alone
    assert any(record["strategy"] == "batched" for record in list(queue.history)[-len(prompts) :])


def test_logit_bias_adds_to_the_answer(server, models) -> None:
    url, _ = server
    base = ask(url, models["safe"], max_tokens=4).choices[0].message.content
    first = target_tokens(models, models["safe"], 1)[0]
    assert base.startswith(models["tokenizer"].decode([first]))
    banned = ask(url, models["safe"], max_tokens=4, logit_bias={str(first): -100}).choices[0].message.content
    assert banned != base and not banned.startswith(models["tokenizer"].decode([first]))


class SlowBackend(Backend):
    """The real backend, with a pause after every step (time to disconnect) or a gate to hold it."""

    delay = 0.0
    hold: threading.Event | None = None

    def stream(self, request: Any, on_tokens: Any) -> list[int]:
        def slow(tokens: list[int]) -> bool:
            if self.hold is not None:
                self.hold.wait(30)
            time.sleep(self.delay)
            return on_tokens(tokens)

        return super().stream(request, slow)


class SlowBatchBackend(Backend):
    """The real backend, whose continuous batch pauses after every step (time for clients to act)."""

    def open_batch(self, request: Any) -> Any:
        batch = super().open_batch(request)
        step = batch.step

        def slow_step() -> Any:
            time.sleep(0.03)
            return step()

        batch.step = slow_step  # type: ignore[method-assign]
        return batch


def test_a_request_joins_a_running_batch_and_a_row_leaves_when_its_client_goes(models) -> None:
    backend = make_backend(models, SlowBatchBackend)
    with serving(backend, {"admit_wait": 0.05}) as (url, queue):
        streams: list[Any] = [None, None]
        barrier = threading.Barrier(2)

        def start(n: int) -> None:
            barrier.wait()  # sent together: gated together, decoded in one batch
            streams[n] = ask(url, QUESTIONS[n], max_tokens=60, stream=True)

        threads = [threading.Thread(target=start, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wait_for(lambda: queue.status()["running"] == 2)  # one batch of two
        chunks = [next(iter(s)) for s in streams]
        for _, _chunk in zip(range(3), streams[1]):
            pass
        streams[1].close()  # this client goes away mid-answer
        late = ask(url, QUESTIONS[2], max_tokens=8)  # arrives while the batch runs, joins it
        rest = list(streams[0])
        records = {r["id"]: r for r in queue.history}
    assert late.smoothie["strategy"] == "batched"
    assert late.choices[0].message.content == target_alone(models, QUESTIONS[2], 8)
    whole = chunks[0].choices[0].delta.content + "".join(c.choices[0].delta.content or "" for c in rest)
    assert whole == target_alone(models, QUESTIONS[0], 60) and rest[-1].choices[0].finish_reason == "length"
    gone = records[chunks[1].id]
    assert gone["finish_reason"] == "cancelled" and gone["completion_tokens"] < 30


def test_a_lone_answer_moves_into_a_batch_when_others_arrive(models) -> None:
    backend = make_backend(models, SlowBackend)
    backend.delay = 0.03
    with serving(backend, {"admit_wait": 0.05}) as (url, _):
        first = ask(url, QUESTIONS[3], max_tokens=50, stream=True)
        head = [next(iter(first)), next(iter(first))]  # it is speculating
        second = ask(url, QUESTIONS[4], max_tokens=8)
        rest = list(first)
    text = "".join(c.choices[0].delta.content or "" for c in head + rest)
    assert text == target_alone(models, QUESTIONS[3], 50)  # the same greedy answer, half of it batched
    assert rest[-1].smoothie["strategy"] == "speculative+batched"
    assert second.smoothie["strategy"] == "batched"
    assert second.choices[0].message.content == target_alone(models, QUESTIONS[4], 8)


def test_a_client_that_disconnects_cancels_its_generation(models) -> None:
    backend = make_backend(models, SlowBackend, lookup=False)
    backend.delay = 0.05
    with serving(backend) as (url, queue):
        stream = ask(url, models["safe"], max_tokens=200, stream=True)
        for _, _chunk in zip(range(3), stream):
            pass
        stream.close()
        deadline = time.monotonic() + 10
        while not queue.history and time.monotonic() < deadline:
            time.sleep(0.05)
        record = queue.history[-1]
    assert record["finish_reason"] == "cancelled"
    assert record["completion_tokens"] < 40  # 200 asked; it stopped within a step or two of the disconnect


def test_errors_are_openai_error_objects(server) -> None:
    url, _ = server
    message = [{"role": "user", "content": "hi"}]
    bad = http(f"{url}/chat/completions", raw=b"{not json")
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    cases = [
        ({"temperature": 5}, "temperature"),
        ({"n": 2}, "n"),
        ({"max_tokens": 10_000}, "max_tokens"),
        ({"tools": []}, "tools"),
        ({"logit_bias": {"x": 1}}, "logit_bias"),
    ]
    for fields, param in cases:
        reply = http(f"{url}/chat/completions", {"messages": message, **fields})
        assert reply.status_code == 400, fields
        assert reply.json()["error"]["param"] == param
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        ask(url, "hi", max_tokens=10_000)
    with pytest.raises(openai.BadRequestError):
        client(url).chat.completions.create(model="tiny", messages=[{"role": "system", "content": "x"}])
    assert http(f"{url}/nothing-here").json()["error"]["message"]


def test_body_size_and_context_are_capped(models) -> None:
    long = "word " * 120  # ~130 tokens of the tiny model's 256 positions
    with serving(make_backend(models, gate=False), max_body_bytes=2000) as (url, _):
        with pytest.raises(openai.APIStatusError) as error:
            ask(url, "x" * 5000)
        assert error.value.status_code == 413
        with pytest.raises(openai.BadRequestError, match="context"):
            ask(url, long, max_tokens=200)
        filled = ask(url, long, max_tokens=openai.NOT_GIVEN)  # no max_tokens: what the context holds
        assert filled.usage.total_tokens <= 256 and filled.usage.completion_tokens > 12


def test_api_key_is_required_when_set(models) -> None:
    with serving(make_backend(models), api_key="sesame") as (url, _):
        with pytest.raises(openai.AuthenticationError):
            client(url, "wrong").models.list()
        with pytest.raises(openai.AuthenticationError):
            ask(url, "hi", key="wrong")
        assert [m.id for m in client(url, "sesame").models.list()] == ["tiny"]
        assert http(url.removesuffix("/v1") + "/health").json()["status"] == "ok"


def test_a_full_queue_answers_429_with_retry_after(models) -> None:
    backend = make_backend(models, SlowBackend)
    backend.hold = threading.Event()
    with serving(backend, {"max_queue": 1, "max_batch": 1}) as (url, queue):
        results: list[Any] = []
        first = threading.Thread(target=lambda: results.append(ask(url, models["safe"], max_tokens=3)))
        first.start()
        wait_for(lambda: queue.status()["running"] == 1)
        second = threading.Thread(target=lambda: results.append(ask(url, models["safe"], max_tokens=3)))
        second.start()
        wait_for(lambda: queue.status()["queued"] == 1)
        third = http(f"{url}/chat/completions", {"messages": [{"role": "user", "content": "hi"}]})
        assert third.status_code == 429 and int(third.headers["Retry-After"]) >= 1
        assert third.json()["error"]["type"] == "rate_limit_error"
        backend.hold.set()
        first.join(30)
        second.join(30)
    assert len(results) == 2 and all(r.choices[0].finish_reason == "length" for r in results)  # none lost


def wait_for(condition: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_smoothing_scales_apply_to_every_request(models, tiny_qwen) -> None:
    from smoothie_cli.config import load_config
    from smoothie_cli.models import resolve_model
    from smoothie_cli.smoothing.runtime import analysis_for, setting_processors

    script = TargetScript(CJK)
    prompts = TOPICS
    with serving(make_backend(models, gate=False)) as (url, _):
        plain = [ask(url, p, max_tokens=24).choices[0].message.content for p in prompts]
    assert any(script.has_target_char(t) for t in plain)  # the random tiny model writes CJK tokens
    source = resolve_model(str(tiny_qwen()))
    analysis = analysis_for(source, load_config(None), "auto")
    processors, _ = setting_processors(analysis, "auto", 0.0, 10.0, "bias")
    with serving(make_backend(models, gate=False, processors=processors)) as (url, _):
        smoothed = [ask(url, p, max_tokens=24).choices[0].message.content for p in prompts]
    assert not any(script.has_target_char(t) for t in smoothed)


def test_stop_scanner_holds_back_a_partial_stop() -> None:
    scanner = StopScanner(["END"])
    assert scanner.push("abcE") == ("ab", False)  # "cE" might still become "END": held back
    assert scanner.push("N") == ("c", False)
    assert scanner.push("Dxyz") == ("", True)
    assert StopScanner(["a", "xyz"]).push("--xy--a") == ("--xy--", True)


def test_serve_refuses_to_bind_beyond_loopback_without_a_key(cli) -> None:
    code, _, err = cli(["serve", "--host", "0.0.0.0"])
    assert code == 2 and "--api-key" in err


def test_sigterm_drains_in_flight_requests_and_stops(tiny_qwen) -> None:
    """The real command in a subprocess: a streaming request in flight when SIGTERM arrives still ends."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [
        sys.executable,
        "-m",
        "smoothie_cli",
        "serve",
        "--target",
        str(tiny_qwen()),
        "--draft",
        "none",
        "--port",
        "0",
        "--json",
        "--no-lookup",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    try:
        line = json.loads(process.stdout.readline())
        assert line["event"] == "listening"
        url = line["url"]
        stream = client(url).chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": "hello"}],
            max_tokens=200,
            temperature=0,
            stream=True,
        )
        chunks = [next(iter(stream))]
        process.send_signal(signal.SIGTERM)
        chunks += list(stream)
        assert chunks[-1].choices[0].finish_reason in ("length", "stop")
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    stopped = json.loads(out.splitlines()[-1])
    assert stopped["event"] == "stopped" and stopped["served"] == 1
    with pytest.raises(urllib.error.URLError):
        http(url.removesuffix("/v1") + "/health")


def test_new_openai_fields_are_accepted_and_meaning_changing_ones_refused(server) -> None:
    """extra="allow" on the request (app.py says why): a field a newer client sends is accepted (and
    logged); one whose meaning the server cannot honour is a 400 naming it."""
    url, _ = server
    message = [{"role": "user", "content": "hi"}]
    newer = {"store": False, "metadata": {"k": "v"}, "parallel_tool_calls": False, "service_tier": "auto"}
    accepted = http(f"{url}/chat/completions", {"messages": message, "max_tokens": 2, **newer})
    assert accepted.status_code == 200 and accepted.json()["choices"][0]["message"]["content"] is not None
    refused = http(
        f"{url}/chat/completions", {"messages": message, "response_format": {"type": "json_object"}}
    )
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "response_format"
    plain = http(
        f"{url}/chat/completions", {"messages": message, "max_tokens": 2, "response_format": {"type": "text"}}
    )
    assert plain.status_code == 200
