"""Fixtures of the integration tests: run by `make test-vllm`, not by `make test` (each vLLM start loads a
model, about a minute on 2 cores)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vllm_servers import BASE, smoothie, vllm_server


def pytest_collection_modifyitems(items: list[Any]) -> None:
    for item in items:
        item.add_marker(pytest.mark.vllm)


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vllm")


@pytest.fixture(scope="session")
def base_dir() -> Path:
    from smoothie_cli.models.resolve import model_directory, resolve_model

    return model_directory(resolve_model(BASE))


@pytest.fixture(scope="session")
def analysis(work: Path) -> Path:
    smoothie("analyze", BASE, "-o", str(work / "analysis"))
    return work / "analysis" / "analysis.json"


@pytest.fixture(scope="session")
def base_server(base_dir: Path, analysis: Path, work: Path) -> Iterator[tuple[str, float, Any]]:
    """The embedded 0.5B in vLLM (float32, as smoothie's reference), smoothie's processor configured with
    the model's analysis; requests smooth only when they ask (the default setting is off)."""
    config = json.dumps({"smoothie": {"scales": str(analysis), "mode": "off"}})
    args = ("--dtype", "float32", "--additional-config", config)
    with vllm_server(base_dir, work / "vllm-base.log", *args) as running:
        yield running
