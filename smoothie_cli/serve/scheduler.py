"""The queue between HTTP handlers and the models: admission, batching, stop strings, cancellation, draining.

One worker thread owns the backend (torch runs there, never on the event loop). It takes every request
waiting when it wakes (after a short window so requests sent together arrive together, up to `max_batch`),
gates them in one batch, answers the refused ones at once, and decodes the rest: requests that can share a
logits pipeline in one batched decode, a lone request by speculation. Each job hands its text back to the
event loop as it is written; a job whose client went away is dropped from the queue, or stopped after the
step in progress when it is already decoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from smoothie_cli.generation.stream import TextStream
from smoothie_cli.serve.backend import Backend, Request

Log = Callable[[dict[str, Any]], None]


class QueueFull(Exception):
    """The queue holds `max_queue` requests; the client should retry after `retry_after` seconds."""

    def __init__(self, waiting: int, retry_after: int) -> None:
        super().__init__(f"the server is busy ({waiting} requests waiting); retry in {retry_after} s")
        self.retry_after = retry_after


class Closed(Exception):
    """The server is shutting down and takes no new requests."""


@dataclass
class Delta:
    text: str


@dataclass
class Done:
    finish_reason: str  # stop | length | content_filter | cancelled
    prompt_tokens: int
    completion_tokens: int
    gate: str
    strategy: str  # speculative | batched | refused


@dataclass
class Failed:
    message: str


Event = Delta | Done | Failed


class StopScanner:
    """Cuts the text at the first stop string, holding back what could still be the start of one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.hold = max(map(len, self.stops), default=1) - 1
        self.pending = ""

    def push(self, text: str) -> tuple[str, bool]:
        """(text safe to show now, whether a stop string was reached)."""
        self.pending += text
        found = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if found:
            out, self.pending = self.pending[: min(found)], ""
            return out, True
        cut = max(len(self.pending) - self.hold, 0)
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out, False

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


@dataclass
class Job:
    """One request in flight: its events go to the handler's asyncio queue on the server's event loop."""

    request: Request
    prompt_tokens: int
    stops: Sequence[str] = ()
    loop: asyncio.AbstractEventLoop | None = None
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex[:24]}")
    created: int = field(default_factory=lambda: int(time.time()))
    events: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    completion_tokens: int = 0
    start: float = field(default_factory=time.perf_counter)

    def cancel(self) -> None:
        """The client went away: stop at the next step, or never start."""
        self.cancelled.set()

    def emit(self, event: Event) -> None:
        if self.loop is None:
            self.events.put_nowait(event)
            return
        # RuntimeError: the event loop is gone (the server stopped), nobody is listening
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)


class _Output:
    """Turns one job's tokens into text deltas: detokenised as they come, cut at stop strings."""

    def __init__(self, job: Job, backend: Backend) -> None:
        self.job, self.backend = job, backend
        self.stream = TextStream(backend.tokenizer)
        self.scanner = StopScanner(job.stops)
        self.stopped = False  # a stop string was reached
        self.last: int | None = None

    def on_tokens(self, tokens: list[int]) -> bool:
        if self.job.cancelled.is_set() or self.stopped:
            return False
        self.job.completion_tokens += len(tokens)
        if tokens:
            self.last = tokens[-1]
        text, self.stopped = self.scanner.push(self.stream.push(tokens))
        if text:
            self.job.emit(Delta(text))
        return not self.stopped

    def finish(self, gate: str, strategy: str) -> Done:
        job = self.job
        if job.cancelled.is_set():
            reason = "cancelled"
        elif self.stopped or self.last in self.backend.stop_ids:
            reason = "stop"
        elif job.completion_tokens >= job.request.max_tokens:
            reason = "length"
        else:
            reason = "stop"
        if reason != "cancelled" and not self.stopped:
            rest = self.stream.text()[self.stream.shown :]  # a character left unfinished at the end
            text, _ = self.scanner.push(rest)
            text += self.scanner.flush()
            if text:
                job.emit(Delta(text))
        return Done(reason, job.prompt_tokens, job.completion_tokens, gate, strategy)


class Scheduler:
    """A bounded queue and the worker thread that answers it."""

    def __init__(
        self,
        backend: Backend,
        *,
        max_queue: int = 64,
        max_batch: int = 16,
        batch_wait: float = 0.02,
        batch_from: int = 2,
        log: Log | None = None,
        log_prompts: bool = False,
    ) -> None:
        self.backend = backend
        self.max_queue, self.max_batch, self.batch_wait, self.batch_from = (
            max_queue,
            max_batch,
            batch_wait,
            batch_from,
        )
        self.log, self.log_prompts = log, log_prompts
        self.waiting: deque[Job] = deque()
        self.running: list[Job] = []
        self.condition = threading.Condition()
        self.closing = False
        self.thread: threading.Thread | None = None
        self.counts = {"served": 0, "refused": 0, "cancelled": 0, "rejected": 0, "failed": 0}
        self.batch_seconds = 1.0  # moving average, for Retry-After
        self.history: deque[dict[str, Any]] = deque(maxlen=256)  # recent finished jobs (no prompts)

    # ---- the event-loop side -----------------------------------------------------------------------

    def start(self) -> None:
        self.thread = threading.Thread(target=self._work, name="smoothie-worker", daemon=True)
        self.thread.start()

    def submit(self, job: Job) -> Job:
        """Queue `job`; raises QueueFull when `max_queue` requests already wait, Closed when draining."""
        with self.condition:
            if self.closing:
                raise Closed("the server is shutting down")
            if len(self.waiting) >= self.max_queue:
                self.counts["rejected"] += 1
                batches = math.ceil((len(self.waiting) + 1) / self.max_batch) + bool(self.running)
                raise QueueFull(len(self.waiting), max(1, math.ceil(batches * self.batch_seconds)))
            self.waiting.append(job)
            self.condition.notify()
        return job

    def close(self, timeout: float | None = None) -> None:
        """Take no new requests, finish the queued and running ones, stop the worker."""
        with self.condition:
            self.closing = True
            self.condition.notify()
        if self.thread is not None:
            self.thread.join(timeout)

    def status(self) -> dict[str, Any]:
        with self.condition:
            return {"queued": len(self.waiting), "running": len(self.running), **self.counts}

    # ---- the worker ---------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self.condition:
                while not self.waiting and not self.closing:
                    self.condition.wait()
                if not self.waiting:
                    return
                short = len(self.waiting) < self.max_batch
            if short and self.batch_wait > 0:
                time.sleep(self.batch_wait)  # requests sent together arrive a few ms apart: take them all
            with self.condition:
                batch = [self.waiting.popleft() for _ in range(min(self.max_batch, len(self.waiting)))]
                self.running = batch
            start = time.perf_counter()
            try:
                self._answer(batch)
            finally:
                with self.condition:
                    self.running = []
                self.batch_seconds = 0.7 * self.batch_seconds + 0.3 * (time.perf_counter() - start)

    def _answer(self, batch: list[Job]) -> None:
        live = []
        for job in batch:
            if job.cancelled.is_set():
                self._finish(job, Done("cancelled", job.prompt_tokens, 0, "unread", "none"))
            else:
                live.append(job)
        if not live:
            return
        try:
            gates = self.backend.gate_batch([j.request for j in live])
        except Exception as error:  # a failure must reach every waiting client, not kill the worker
            for job in live:
                self._fail(job, error)
            return
        answer: list[tuple[Job, str]] = []
        for job, (gate, refused) in zip(live, gates):
            if refused:
                text = self.backend.refusal
                job.completion_tokens = self.backend.count_tokens(text)
                job.emit(Delta(text))
                self._finish(
                    job, Done("content_filter", job.prompt_tokens, job.completion_tokens, gate, "refused")
                )
            else:
                answer.append((job, gate))
        groups: dict[Any, list[tuple[Job, str]]] = {}
        for job, gate in answer:
            key = job.request.batch_key
            groups.setdefault(key if key is not None else ("alone", job.id), []).append((job, gate))
        for group in groups.values():
            if len(group) >= self.batch_from:
                self._decode_together(group)
            else:
                for job, gate in group:
                    self._decode_alone(job, gate)

    def _decode_alone(self, job: Job, gate: str) -> None:
        if job.cancelled.is_set():
            self._finish(job, Done("cancelled", job.prompt_tokens, 0, gate, "speculative"))
            return
        output = _Output(job, self.backend)
        try:
            self.backend.stream(job.request, output.on_tokens)
        except Exception as error:
            self._fail(job, error)
            return
        self._finish(job, output.finish(gate, "speculative"))

    def _decode_together(self, group: list[tuple[Job, str]]) -> None:
        outputs = [_Output(job, self.backend) for job, _ in group]
        try:
            self.backend.decode_batch([job.request for job, _ in group], [o.on_tokens for o in outputs])
        except Exception as error:
            for job, _ in group:
                self._fail(job, error)
            return
        for output, (job, gate) in zip(outputs, group):
            self._finish(job, output.finish(gate, "batched"))

    def _finish(self, job: Job, done: Done) -> None:
        key = {"content_filter": "refused", "cancelled": "cancelled"}.get(done.finish_reason, "served")
        record = {
            "id": job.id,
            "finish_reason": done.finish_reason,
            "gate": done.gate,
            "strategy": done.strategy,
            "prompt_tokens": done.prompt_tokens,
            "completion_tokens": done.completion_tokens,
            "seconds": round(time.perf_counter() - job.start, 3),
        }
        with self.condition:
            self.counts[key] += 1
            self.history.append(record)
        job.emit(done)
        self._log(job, record)

    def _fail(self, job: Job, error: Exception) -> None:
        with self.condition:
            self.counts["failed"] += 1
        job.emit(Failed(f"generation failed: {type(error).__name__}: {error}"))
        self._log(job, {"id": job.id, "error": f"{type(error).__name__}: {error}"})

    def _log(self, job: Job, record: dict[str, Any]) -> None:
        if self.log is None:
            return
        if self.log_prompts:
            record = {**record, "messages": list(job.request.messages)}
        self.log(record)
