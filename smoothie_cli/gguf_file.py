"""Open a GGUF file with the `gguf` package, so that a damaged file is one `SmoothieError`, never a hang.

`gguf.GGUFReader` trusts the file: it slices past the end without complaint (a truncated array of numbers
then loops over its claimed length, which can be 2^64), builds a Python object per array element whatever
the claimed count, and raises whatever numpy or struct raise. `read_gguf` uses a reader whose every read
must lie inside the file and whose array lengths must fit in the bytes left, then checks that tensor data
lies inside the file without overlapping. transformers' GGUF loader uses the same package, so smoothie
opens a .gguf this way before handing it over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smoothie_cli.errors import SmoothieError
from smoothie_cli.jsonfile import first_line

MAX_ARRAY_ITEMS = 1 << 22  # far above any real metadata array (vocabularies and merges are < 1M)


def _strict_reader_class() -> type:
    import numpy as np
    from gguf import GGUFReader, GGUFValueType

    class StrictReader(GGUFReader):  # type: ignore[misc, valid-type]
        def _get(self, offset: int, dtype: Any, count: int = 1, override_order: Any = None) -> Any:
            count = int(count)
            end = int(offset) + np.dtype(dtype).itemsize * count
            if offset < 0 or count < 0 or end > len(self.data):
                raise ValueError(f"it ends early (a field at byte {offset} runs past {len(self.data)})")
            return super()._get(offset, dtype, count, override_order)

        def _get_field_parts(self, orig_offs: int, raw_type: int) -> Any:
            if raw_type == GGUFValueType.ARRAY:
                item_type = int(self._get(orig_offs, np.uint32)[0])
                count = int(self._get(orig_offs + 4, np.uint64)[0])
                scalar = self.gguf_scalar_to_np.get(item_type)  # type: ignore[call-overload]
                smallest = np.dtype(scalar).itemsize if scalar is not None else 8  # a string: its length
                if count > MAX_ARRAY_ITEMS or count * smallest > len(self.data) - orig_offs - 12:
                    raise ValueError(f"an array at byte {orig_offs} claims {count:,} items, more than fit")
            return super()._get_field_parts(orig_offs, raw_type)

    return StrictReader


def read_gguf(path: Path) -> Any:
    """A `gguf.GGUFReader` over `path`, every field and tensor checked to lie inside the file."""
    path = Path(path)
    try:
        if path.stat().st_size < 24:
            raise ValueError("too short to hold a GGUF header")
        reader = _strict_reader_class()(str(path))
        _check_tensors(reader)
    except OSError as error:
        raise SmoothieError(f"cannot read {path}: {error.strerror or error}") from None
    except (
        Exception
    ) as error:  # gguf and numpy raise ValueError, KeyError, IndexError, struct and decode errors
        raise SmoothieError(f"{path} is not a readable GGUF file ({first_line(error)})") from None
    return reader


def _check_tensors(reader: Any) -> None:
    end = 0
    for tensor in sorted(reader.tensors, key=lambda t: t.data_offset):
        if tensor.data_offset < end:
            raise ValueError(f"tensor {tensor.name} overlaps the one before it")
        end = tensor.data_offset + int(tensor.n_bytes)
        if int(tensor.data.nbytes) != int(tensor.n_bytes) or end > len(reader.data):
            raise ValueError(f"tensor {tensor.name} runs past the end of the file")


def string_array(reader: Any, key: str, path: Path) -> list[str] | None:
    """The metadata array of strings at `key`, or None when absent."""
    from gguf import GGUFValueType

    field = reader.fields.get(key)
    if field is None:
        return None
    if list(field.types) != [GGUFValueType.ARRAY, GGUFValueType.STRING]:
        raise SmoothieError(f"{path}: {key} is not an array of strings")
    try:
        return list(field.contents())
    except UnicodeDecodeError:
        raise SmoothieError(f"{path}: {key} holds a string that is not UTF-8") from None


def int_array(reader: Any, key: str, path: Path) -> list[int] | None:
    """The metadata array of integers at `key`, or None when absent."""
    from gguf import GGUFValueType

    field = reader.fields.get(key)
    if field is None:
        return None
    integer = {getattr(GGUFValueType, f"{sign}INT{bits}") for sign in ("", "U") for bits in (8, 16, 32, 64)}
    if len(field.types) != 2 or field.types[0] != GGUFValueType.ARRAY or field.types[1] not in integer:
        raise SmoothieError(f"{path}: {key} is not an array of integers")
    return [int(v) for v in field.contents()]


def string_value(reader: Any, key: str, path: Path) -> str | None:
    """The metadata string at `key`, or None when absent."""
    from gguf import GGUFValueType

    field = reader.fields.get(key)
    if field is None:
        return None
    if list(field.types) != [GGUFValueType.STRING]:
        raise SmoothieError(f"{path}: {key} is not a string")
    try:
        return str(field.contents())
    except UnicodeDecodeError:
        raise SmoothieError(f"{path}: {key} is not UTF-8 text") from None
