"""Read JSON, JSONL and YAML files that come from outside: a valid value, or one `SmoothieError` line.

Every reader of a file smoothie did not just write goes through here (or, for binary formats, through the
module that owns the format), so a damaged file gives one line naming the file and what is wrong — never a
traceback. `read_json_model` validates the shape with a pydantic model; `validation_line` turns pydantic's
report into that one line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from smoothie_cli.errors import SmoothieError

M = TypeVar("M", bound=BaseModel)
_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string"}


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of `path` (a BOM is dropped); `what` names the file in the message ("config")."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SmoothieError(f"{what} {path} does not exist; check the path") from None
    except UnicodeDecodeError as error:
        raise SmoothieError(
            f"{what} {path} is not UTF-8 text (bad byte at offset {error.start}); is it the right file?"
        ) from None
    except OSError as error:
        raise SmoothieError(f"cannot read {what} {path}: {error.strerror or error}") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"the key {duplicate!r} appears twice")
    return document


def parse_json(text: str | bytes, where: str) -> Any:
    """JSON text → value. Duplicate keys are an error (which one counts is ambiguous), and so are very deep
    nesting and numbers too long to convert, which the json module reports as other exceptions."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise SmoothieError(
            f"{where} is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from None
    except UnicodeDecodeError:
        raise SmoothieError(f"{where} is not UTF-8 JSON text") from None
    except ValueError as error:  # a duplicate key, or an integer of more than 4300 digits
        raise SmoothieError(f"{where} is not usable JSON ({error})") from None
    except RecursionError:
        raise SmoothieError(f"{where} nests too deeply to be the JSON smoothie expects") from None


def read_json(path: Path, what: str, expect: type | None = dict) -> Any:
    """The JSON value in `path`; with `expect`, its top level must be of that type."""
    value = parse_json(read_text(path, what), f"{what} {path}")
    if expect is not None and not isinstance(value, expect):
        wanted = _TYPE_NAMES.get(expect, expect.__name__)
        raise SmoothieError(f"{what} {path} should hold {wanted} at the top level, not {_kind(value)}")
    return value


def validation_line(error: ValidationError, where: str, model: type[BaseModel] | None = None) -> str:
    """pydantic's first complaint as one line: `where: field.path: message (and N more)`."""
    first = error.errors()[0]
    location = ".".join(_key(p) for p in first["loc"]) or "top level"
    message = first["msg"].removeprefix("Value error, ").replace("\n", " ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
        if model is not None and len(first["loc"]) == 1:
            message += f" (the keys are {', '.join(model.model_fields)})"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {location}: {message}{more}"


def _key(part: str | int) -> str:
    """A path element as written in a message: plain names as they are, anything odd quoted."""
    text = str(part)
    return text if text.replace("_", "a").replace("-", "a").isalnum() and text.isascii() else repr(text)[:40]


def validate(model: type[M], value: Any, where: str) -> M:
    """`value` checked against `model`, or a SmoothieError naming `where` and the first bad field."""
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise SmoothieError(validation_line(error, where, model)) from None
    except RecursionError:
        raise SmoothieError(f"{where}: nests too deeply") from None


def read_json_model(path: Path, model: type[M], what: str) -> M:
    """The JSON file `path` validated against the pydantic `model`."""
    return validate(model, read_json(path, what, expect=None), f"{what} {path}")


@dataclass
class JsonLines:
    """The good records of a JSONL file, and the lines that were skipped (1-based numbers)."""

    records: list[Any] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


def read_jsonl(
    path: Path, what: str, check: Callable[[Any, str], Any] | None = None, *, tolerant: bool = False
) -> JsonLines:
    """Records of a JSON-lines file (blank lines ignored), each passed through `check(value, where)`.

    Strict (default): the first bad line is a SmoothieError naming it. `tolerant`: bad lines are skipped and
    listed, for logs smoothie appends to itself (a kill mid-write leaves a cut last line).
    """
    if tolerant:  # a damaged byte spoils its line only (the line then fails to parse or to check)
        try:
            text = Path(path).read_bytes().decode("utf-8", errors="replace")
        except OSError as error:
            raise SmoothieError(f"cannot read {what} {path}: {error.strerror or error}") from None
    else:
        text = read_text(path, what)
    result = JsonLines()
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{what} {path} line {number}"
        try:
            value = parse_json(line, where)
            result.records.append(check(value, where) if check is not None else value)
        except SmoothieError:
            if not tolerant:
                raise
            result.skipped.append(number)
    return result


def first_line(error: BaseException, limit: int = 200) -> str:
    """A library exception as a short clause for a SmoothieError message."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _kind(value: Any) -> str:
    for kind, name in _TYPE_NAMES.items():
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__


MAX_YAML_CHARS = 1 << 18  # PyYAML reads ~100 KB/s; configs and grids are a few hundred bytes
MAX_YAML_DEPTH = 64


def _bracket_depth(text: str) -> int:
    """The deepest nesting of [ and { (quotes ignored: an over-estimate, which is safe here)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    return deepest


def read_yaml(path: Path, what: str) -> Any:
    """The YAML document in `path` (safe loader); None for an empty file."""
    import yaml

    text = read_text(path, what)
    if len(text) > MAX_YAML_CHARS:
        raise SmoothieError(f"{what} {path} is {len(text):,} characters; a config is a few hundred")
    if _bracket_depth(text) > MAX_YAML_DEPTH:
        # PyYAML's scanner is quadratic in flow nesting: 100,000 brackets would hang it for minutes
        raise SmoothieError(
            f"{what} {path} nests brackets more than {MAX_YAML_DEPTH} deep; is it the right file?"
        )
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise SmoothieError(f"{what} {path} is not valid YAML{at}: fix the syntax and retry") from None
    except (ValueError, TypeError, OverflowError) as error:
        # PyYAML builds dates and numbers itself and lets their errors through (e.g. `2024-13-01`)
        raise SmoothieError(f"{what} {path} holds a value YAML cannot read ({first_line(error)})") from None
    except RecursionError:
        raise SmoothieError(f"{what} {path} nests too deeply") from None
