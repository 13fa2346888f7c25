"""Labelled documents generated per test session (nothing binary is committed): the generator
and scorer under ``tests/data/documents`` and the corpora made with them. The fixtures are
imported by the unit and the integration ``documents`` conftests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

DATA = Path(__file__).resolve().parent / "data" / "documents"


def load(name: str) -> ModuleType:
    module_name = f"spojka_documents_testdata_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, DATA / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def docgen() -> ModuleType:
    return load("generate")


@pytest.fixture(scope="session")
def score() -> ModuleType:
    return load("score")


@pytest.fixture(scope="session")
def dev_corpus(docgen: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return docgen.generate(tmp_path_factory.mktemp("dev"), split="dev", count=32, scans=0)


@pytest.fixture(scope="session")
def heldout_corpus(docgen: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return docgen.generate(tmp_path_factory.mktemp("heldout"), split="heldout", count=32, scans=0)
