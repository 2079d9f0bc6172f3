"""Answers from an OpenAI-compatible server (vLLM, llama.cpp, Ollama, `smoothie serve`): `smoothie eval
--endpoint URL` evaluates a model where it is served, with no local copy of it."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from smoothie_cli.errors import Conflict, SmoothieError
from smoothie_cli.evaluation.session import Session
from smoothie_cli.generation.sampling import SamplingConfig
from smoothie_cli.progress import Progress, no_progress

# tasks that only read generated text: the others need the model's own logits or hidden states
ENDPOINT_TASKS = ("no-chinese", "language", "bertscore", "humaneval")


@dataclass
class EndpointGenerator:
    """The Generator protocol (evaluation tasks) over a chat-completions endpoint, `concurrency` requests
    at a time; `extra_body` carries server-side smoothing (logit_bias, or vllm_xargs for smoothie's
    processor in vLLM)."""

    url: str
    model: str | None = None
    api_key: str | None = None
    max_new_tokens: int = 128
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    concurrency: int = 8
    extra_body: dict[str, Any] | None = None
    timeout: float = 600.0
    name: str = "endpoint"

    def __post_init__(self) -> None:
        import openai

        self.client = openai.OpenAI(base_url=self.url, api_key=self.api_key or "none", timeout=self.timeout,
                                    max_retries=2)  # fmt: skip
        if self.model is None:
            self.model = self.served_model()

    def served_model(self) -> str:
        import openai

        try:
            models = [m.id for m in self.client.models.list()]
        except openai.APIError as error:
            raise SmoothieError(
                f"the endpoint {self.url} cannot list its models ({error}); check the URL"
            ) from None
        if not models:
            raise SmoothieError(f"the endpoint {self.url} serves no model")
        return models[0]

    def generate(self, examples: Sequence[Any], progress: Progress = no_progress) -> list[str]:
        description = f"generating ({self.url})"
        progress(description, 0, len(examples))
        done = [0]

        def one(example: Any) -> str:
            text = self.answer(example)
            done[0] += 1
            progress(description, done[0], len(examples))
            return text

        with ThreadPoolExecutor(max(1, self.concurrency)) as pool:
            return list(pool.map(one, examples))

    def answer(self, example: Any) -> str:
        import openai

        messages = [{"role": "system", "content": example.system}] if getattr(example, "system", None) else []
        messages.append({"role": "user", "content": example.prompt})
        greedy = self.sampling.greedy
        try:
            reply = self.client.chat.completions.create(
                model=self.model,  # type: ignore[arg-type]
                messages=messages,  # type: ignore[arg-type]
                max_tokens=self.max_new_tokens,
                temperature=0.0 if greedy else self.sampling.temperature,
                top_p=1.0 if greedy else self.sampling.top_p,
                seed=self.sampling.seed,
                extra_body=self.extra_body,
            )
        except openai.APITimeoutError:
            raise SmoothieError(
                f"the endpoint {self.url} gave no answer to '{example.id}' within {self.timeout:g} s "
                "(its queue included); allow it longer, or send fewer requests at once",
                setting="endpoint_timeout",
            ) from None
        except openai.APIError as error:
            raise SmoothieError(f"the endpoint {self.url} failed on '{example.id}': {error}") from None
        return reply.choices[0].message.content or ""


def check_endpoint_tasks(tasks: Sequence[str]) -> None:
    others = [t for t in tasks if t not in ENDPOINT_TASKS]
    if others:
        raise Conflict(
            f"an endpoint runs only the tasks that read generated text ({', '.join(ENDPOINT_TASKS)}); "
            f"{', '.join(others)} needs the model itself: evaluate it locally",
            setting="endpoint",
        )


@dataclass
class EndpointSession(Session):
    """A session whose answers come from a server: a smoothing setting travels with each request (vllm_xargs
    for smoothie's processor in the server, or a logit_bias built here from the model's vocabulary), so a
    sweep changes settings without reloading anything."""

    processor: bool = False  # the server runs smoothie's vLLM logits processor
    vocabulary_model: str | None = None  # where a logit_bias's vocabulary comes from (a resolvable model)

    def analysis(self, path: str) -> dict[str, Any]:
        from smoothie_cli.models import resolve_model
        from smoothie_cli.smoothing.runtime import analysis_for

        if self._analysis is None:
            name = self.vocabulary_model or ""
            try:
                self._analysis = analysis_for(resolve_model(name), self.config, path)
            except SmoothieError as error:
                raise Conflict(
                    f"a logit_bias is built here from the served model's vocabulary, and '{name}' gives none "
                    f"({error}); name the model as a hub id, model directory or embedded:NAME, or run "
                    "smoothie's processor in the server"
                ) from None
        return self._analysis

    def apply_setting(
        self, scales: str | None, min_scale: float = 0.5, smoothness: float = 10.0, mode: str = "scale"
    ) -> dict[str, Any]:
        from smoothie_cli.smoothing.runtime import server_smoothing

        def analysis() -> dict[str, Any]:
            assert scales is not None
            return self.analysis(scales)

        asked = server_smoothing(None if scales is None else analysis, min_scale, smoothness, mode,
                                 self.processor)  # fmt: skip
        self.context.generator.extra_body = asked.body()
        return {"label": asked.label, "scales": "server" if self.processor else scales,
                "min_scale": min_scale, "smoothness": smoothness, "mode": mode}  # fmt: skip


def endpoint_session(
    url: str,
    model: str | None,
    key: str | None,
    config: Any,
    sampling: SamplingConfig,
    max_new_tokens: int,
    concurrency: int,
    extra_body: dict[str, Any] | None = None,
    processor: bool = False,
    timeout: float | None = None,
) -> EndpointSession:
    """An evaluation session whose answers come from the endpoint (no local model, no tokenizer; a logit_bias
    reads the vocabulary of `model`, or of the served model's name, when a setting asks for one)."""
    from smoothie_cli.evaluation.tasks.base import EvalContext
    from smoothie_cli.models.resolve import ModelSource
    from smoothie_cli.vocab.scripts import TargetScript

    waits = EndpointGenerator.timeout if timeout is None else timeout
    generator = EndpointGenerator(
        url.rstrip("/"), model, key, max_new_tokens, sampling, concurrency, extra_body, waits
    )
    context = EvalContext(None, None, generator, TargetScript(config.blocks()), batch_size=concurrency)
    source = ModelSource(f"{generator.model} at {url}", "hub", url)
    return EndpointSession(source, config, context, processor=processor, vocabulary_model=generator.model)
