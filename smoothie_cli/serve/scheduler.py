"""The queue between HTTP handlers and the models: admission, batching, stop strings, cancellation, draining.

One worker thread owns the backend (torch runs there, never on the event loop). It takes the requests
waiting when it wakes (after a short window, so requests sent together arrive together), gates them in one
batch and answers the refused ones at once. A lone request is answered by speculation. Several start a
continuous batch: plain batched decoding that requests with the same sampling settings join while it runs
(gated in groups as they arrive) and leave when done; requests with other settings wait for it to drain, so
none starves. Each job hands its text back to the event loop as it is written; a job whose client went away
is dropped from the queue, or leaves the batch (or its speculation stops) at the next step.
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
    strategy: str  # speculative | batched | speculative+batched | refused


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
        self.stream = TextStream(backend.engine.tokenizer)
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
        elif self.stopped or self.last in self.backend.engine.stop_ids:
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


@dataclass
class _Row:
    """A gated job, ready to decode, and its output once it decodes."""

    job: Job
    gate: str
    output: _Output | None = None
    strategy: str = "batched"  # "speculative+batched": an answer that moved from speculation into a batch

    @property
    def key(self) -> Any:
        return self.job.request.batch_key


class Scheduler:
    """A bounded queue and the worker thread that answers it."""

    def __init__(
        self,
        backend: Backend,
        *,
        max_queue: int = 64,
        max_batch: int = 16,
        batch_wait: float = 0.02,
        admit_wait: float = 1.0,
        log: Log | None = None,
        log_prompts: bool = False,
    ) -> None:
        self.backend = backend
        self.max_queue, self.max_batch = max_queue, max_batch
        # a running batch pauses to gate and prefill newcomers: it takes them in groups of a quarter of
        # the batch, or once the oldest has waited `admit_wait` seconds
        self.batch_wait, self.admit_wait = batch_wait, admit_wait
        self.log, self.log_prompts = log, log_prompts
        self.waiting: deque[Job] = deque()  # not gated yet
        self.ready: deque[_Row] = deque()  # gated, waiting for a batch of their settings
        self.rows: dict[str, _Row] = {}  # decoding now (the batch's rows, or the lone speculation)
        self.batch: Any = None  # the backend's RunningBatch while one runs
        self.condition = threading.Condition()
        self.closing = False
        self.thread: threading.Thread | None = None
        self.counts = {"served": 0, "refused": 0, "cancelled": 0, "rejected": 0, "failed": 0}
        self.job_seconds = 5.0  # moving average of a request's time, for Retry-After
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
            queued = len(self.waiting) + len(self.ready)
            if queued >= self.max_queue:
                self.counts["rejected"] += 1
                rounds = math.ceil((queued + 1) / self.max_batch)
                raise QueueFull(queued, max(1, math.ceil(rounds * self.job_seconds)))
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
            return {"queued": len(self.waiting) + len(self.ready), "running": len(self.rows), **self.counts}

    # ---- the worker ---------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self.condition:
                while not (self.waiting or self.ready or self.batch or self.closing):
                    self.condition.wait()
                if not (self.waiting or self.ready or self.batch):
                    return  # closing, and nothing left to finish
            try:
                if self.batch is None:
                    self._start()
                else:
                    self._grow()
                    self._step()
            except Exception as error:  # a failure must reach its clients, not kill the worker
                for row in list(self.rows.values()):
                    self._fail(row.job, error)
                with self.condition:
                    self.rows, self.batch = {}, None

    def _start(self) -> None:
        """Nothing decoding: gate what waits, then speculate a lone request or start a batch."""
        with self.condition:
            short = len(self.waiting) + len(self.ready) < self.max_batch
        if short and self.batch_wait > 0:
            time.sleep(self.batch_wait)  # requests sent together arrive a few ms apart: take them all
        self._gate(self.max_batch)
        with self.condition:
            self._drop_cancelled_ready()
            if not self.ready:
                return
            key = self.ready[0].key
            group = [r for r in self.ready if key is not None and r.key == key][: self.max_batch]
            if len(group) < 2:
                group = [self.ready[0]]
            for row in group:
                self.ready.remove(row)
                self.rows[row.job.id] = row
        if len(group) == 1:
            self._speculate(group[0])
            return
        self.batch = self.backend.open_batch(group[0].job.request)
        self._join(group)

    def _grow(self) -> None:
        """A batch runs: let ready requests of its settings join, gating newcomers in groups. Stops taking
        any once a request of other settings waits, so the batch drains and that one gets its turn."""
        room = self.max_batch - len(self.rows)
        with self.condition:
            oldest = self.waiting[0].start if self.waiting else None
            enough = len(self.waiting) >= max(1, min(room, self.max_batch // 4))
        due = oldest is not None and time.perf_counter() - oldest >= self.admit_wait
        if room > 0 and (enough or due) and not self._blocked():
            self._gate(room)
        with self.condition:
            self._drop_cancelled_ready()
            if self._blocked():
                return
            key = next(iter(self.rows.values())).key if self.rows else None
            joining = [r for r in self.ready if r.key == key][: self.max_batch - len(self.rows)]
            for row in joining:
                self.ready.remove(row)
                self.rows[row.job.id] = row
        if joining:
            self._join(joining)

    def _blocked(self) -> bool:
        """A gated request waits that cannot join the running batch."""
        key = next(iter(self.rows.values())).key if self.rows else None
        return any(r.key != key or key is None for r in self.ready)

    def _gate(self, most: int) -> None:
        """Gate up to `most` waiting requests in one batch: refusals are answered, the rest become ready."""
        with self.condition:
            taken = [self.waiting.popleft() for _ in range(min(most, len(self.waiting)))]
        live = []
        for job in taken:
            if job.cancelled.is_set():
                self._finish(job, Done("cancelled", job.prompt_tokens, 0, "unread", "none"))
            else:
                live.append(job)
        if not live:
            return
        try:
            gates = self.backend.gate_batch([j.request for j in live])
        except Exception as error:
            for job in live:
                self._fail(job, error)
            return
        for job, (gate, refused) in zip(live, gates):
            if refused:
                text = self.backend.refusal
                job.completion_tokens = self.backend.count_tokens(text)
                job.emit(Delta(text))
                self._finish(
                    job, Done("content_filter", job.prompt_tokens, job.completion_tokens, gate, "refused")
                )
            else:
                with self.condition:
                    self.ready.append(_Row(job, gate))

    def _drop_cancelled_ready(self) -> None:
        for row in [r for r in self.ready if r.job.cancelled.is_set()]:
            self.ready.remove(row)
            self._finish(row.job, Done("cancelled", row.job.prompt_tokens, 0, row.gate, "none"))

    def _speculate(self, row: _Row) -> None:
        """A lone request by speculation. When others arrive meanwhile, its answer moves into a new batch
        (prompt + answer so far prefilled) that they can join, rather than holding them until it ends."""
        output = row.output = _Output(row.job, self.backend)
        moved = False

        def on_tokens(tokens: list[int]) -> bool:
            nonlocal moved
            going = output.on_tokens(tokens)
            if going and row.key is not None and self.waiting:
                moved = True
                return False
            return going

        try:
            self.backend.stream(row.job.request, on_tokens)
        except Exception as error:
            self._fail(row.job, error)
            moved = False
        else:
            job = row.job
            ended = output.stopped or output.last in self.backend.engine.stop_ids
            if (
                moved
                and not ended
                and not job.cancelled.is_set()
                and job.completion_tokens < job.request.max_tokens
            ):
                row.strategy = "speculative+batched"
                self.batch = self.backend.open_batch(job.request)
                self._deliver(self.batch.join([job.request], [job.id], [output.stream.tokens]))
                return
            self._finish(job, output.finish(row.gate, "speculative"))
        with self.condition:
            self.rows.pop(row.job.id, None)

    def _join(self, rows: list[_Row]) -> None:
        for row in rows:
            row.output = _Output(row.job, self.backend)
        first = self.batch.join([r.job.request for r in rows], [r.job.id for r in rows])
        self._deliver(first)

    def _step(self) -> None:
        if self.batch is not None and len(self.batch):
            self._deliver(self.batch.step())

    def _deliver(self, tokens: dict[Any, int]) -> None:
        """Hand each row its token; rows that end (end of turn, max_tokens, a stop string, a client gone)
        leave the batch and finish."""
        done = []
        for key, token in tokens.items():
            row = self.rows[key]
            assert row.output is not None
            going = row.output.on_tokens([token])
            if (
                not going
                or token in self.backend.engine.stop_ids
                or row.job.completion_tokens >= row.job.request.max_tokens
            ):
                done.append(row)
        if not done:
            return
        self.batch.leave([row.job.id for row in done])
        for row in done:
            assert row.output is not None
            self._finish(row.job, row.output.finish(row.gate, row.strategy))
        with self.condition:
            for row in done:
                self.rows.pop(row.job.id, None)
            if not self.rows:
                self.batch = None

    def _finish(self, job: Job, done: Done) -> None:
        key = {"content_filter": "refused", "cancelled": "cancelled"}.get(done.finish_reason, "served")
        seconds = time.perf_counter() - job.start
        record = {
            "id": job.id,
            "finish_reason": done.finish_reason,
            "gate": done.gate,
            "strategy": done.strategy,
            "prompt_tokens": done.prompt_tokens,
            "completion_tokens": done.completion_tokens,
            "seconds": round(seconds, 3),
        }
        with self.condition:
            self.counts[key] += 1
            self.history.append(record)
            if key == "served":
                self.job_seconds = 0.8 * self.job_seconds + 0.2 * seconds
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
