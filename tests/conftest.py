"""Shared test setup: offline hub, fixture paths, cached real tokenizers.

Tests use real files only: tokenizers built from the fixtures ``tests/fixtures_locate.py`` finds
(``LF_TEMPLATE_EXT_FIXTURES``, ``../shared/fixtures/models``, the fetched cache; tests/fixtures/README.md), the installed LLaMA-Factory, and the engines' own packages.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
sys.path.insert(0, str(TESTS))



def pytest_sessionstart(session):
    from fixtures_locate import FixturesNotFound, locate

    try:
        locate()
    except FixturesNotFound as e:
        raise pytest.UsageError(str(e)) from None


@pytest.fixture(scope="session")
def qwen25():
    from harness import fixture_tokenizer

    return fixture_tokenizer("Qwen--Qwen2.5-1.5B-Instruct")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
