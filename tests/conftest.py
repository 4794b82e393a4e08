"""Real components for every test: the bundled model loaded once, one index built once per run."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from bot.settings import Settings, replace

REPO = Path(__file__).resolve().parent.parent
BULLETINS = REPO / "corpus" / "bulletins"
QUESTIONS = REPO / "tests" / "data" / "questions.jsonl"   # the project's own question set (ships with it)
DEV_SET = REPO.parent / "shared" / "eval" / "dev.jsonl"     # the workspace's held-out set, beside a checkout only
TODAY = dt.date(2025, 9, 20)          # the reference day both question sets were written against


def dev_set() -> Path:
    """Return ../shared/eval/dev.jsonl, or skip the test when the checkout has nothing beside it."""
    if not DEV_SET.is_file():
        pytest.skip(f"{DEV_SET} is absent (a plain clone has no ../shared); tests/data/questions.jsonl covers it")
    return DEV_SET


def engine_for(settings: Settings, answerer, querylog=None):
    """An engine over an answerer already loaded (the session's), answering on one worker thread."""
    from bot.engine import Engine
    return Engine(settings, answerer=answerer, querylog=querylog, workers=1)


def app_for(settings: Settings, engine, channels=None):
    """The ASGI app over ``engine``, handed its sections of ``settings`` as `serve` hands them."""
    from bot.channels.sections import WebSections
    from bot.channels.web import build_app
    return build_app(WebSections(settings.web, settings.wechat, settings.follow), engine, channels)


def settings_for(data_dir: Path, **sections) -> Settings:
    return replace(Settings(), data={"dir": str(data_dir)}, **sections)


@pytest.fixture(scope="session")
def embedder():
    from index.embedding import Embedder
    return Embedder(Settings().embedding)


@pytest.fixture(scope="session")
def built_data_dir(tmp_path_factory, embedder) -> Path:
    """A data directory holding the index of the five bundled issues (built once)."""
    from index.build import ensure_index
    data = tmp_path_factory.mktemp("data")
    ensure_index(settings_for(data), embedder)
    return data


@pytest.fixture(scope="session")
def answerer(built_data_dir, embedder):
    from bot.answer import Answerer
    return Answerer(settings_for(built_data_dir), embedder, today=TODAY)


@pytest.fixture
def data_dir(built_data_dir, tmp_path) -> Path:
    """A private copy of the built data directory, for tests that change it."""
    target = tmp_path / "data"
    shutil.copytree(built_data_dir, target, symlinks=True)
    return target
