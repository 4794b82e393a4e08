"""The engine and its one concurrency model: answer workers (threads or processes) serving the same generation,
reads never behind answers, questions of clients that left not computed, caches filled whole."""
from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from bot.engine import Engine
from bot.answer import Answerer
from bot.pool import watch
from index.build import index_identity, ingest_files
from index.generations import Generations
from index.store import IndexStore
from tests.conftest import app_for, REPO, TODAY, settings_for
from tests.test_web import BLOOD
from tests.wechat_standin import serve_app

NEW_ISSUE = REPO / "tests" / "data" / "follow-issue-2025-08-05.txt"
NEW_QUESTION = "南阳市第二人民医院8月那次献血，献血总量是多少毫升？"
NEW_FACT = "27400"
ANSWER_S = 1.5


class SlowAnswerer:
    """The session's real answerer, each answer taking ANSWER_S longer (a busy machine), counting answers."""

    def __init__(self, real):
        self.real, self.calls = real, 0
        self.embedder = real.embedder

    def answer(self, text, k=None):
        self.calls += 1
        time.sleep(ANSWER_S)
        return self.real.answer(text, k=k)

    def refresh(self):
        return self.real.refresh()


def test_an_engine_is_cheap_to_make(tmp_path):
    engine = Engine(settings_for(tmp_path / "nothing-yet"))
    assert engine._embedder is None and engine._answerer is None and engine._pool is None
    assert not (tmp_path / "nothing-yet").exists()                  # nothing built, opened or written


def test_the_article_cache_is_filled_whole_under_concurrent_readers(built_data_dir, embedder):
    """Six threads asking a freshly opened store for every article all see the complete map, never a part."""
    current = Generations(built_data_dir).current()
    identity = index_identity(settings_for(built_data_dir), embedder)
    expected = len(IndexStore(current, identity, verify=False).all_articles())
    partial = 0
    with ThreadPoolExecutor(6) as pool:
        for _ in range(100):
            store = IndexStore(current, identity, verify=False)
            start = threading.Barrier(6)

            def read():
                start.wait()
                return len(store.all_articles())
            partial += sum(n != expected for n in pool.map(lambda _: read(), range(6)))
            store.db.conn.close()
    assert expected > 30 and partial == 0


@pytest.mark.slow
def test_worker_processes_answer_as_the_engine_does_and_pick_up_a_swap(data_dir, answerer):
    # The watchers look once an hour here: the workers serve the new issue because the ingest waited for them.
    engine = Engine(settings_for(data_dir, web={"watch_s": 3600.0}), today=TODAY, workers=2)
    try:
        async def ask_all(question: str, n: int) -> list:
            return await asyncio.gather(*(engine.ask(question, channel="web", user_id=f"t{i}") for i in range(n)))

        engine.warm()
        assert engine.pool.warm() == 2                                         # both processes loaded and answering
        before = asyncio.run(ask_all(BLOOD, 4))
        assert {a.answer.text for a in before} == {answerer.answer(BLOOD).text}
        assert len({a.query_id for a in before}) == 4                        # each logged once
        assert all(NEW_FACT not in a.answer.text for a in asyncio.run(ask_all(NEW_QUESTION, 2)))
        assert engine.ingest([NEW_ISSUE]).added                                # a new generation swapped in
        current = Generations(data_dir).current().name
        serving = engine.pool.serving()                                      # no question has asked them to open it
        assert len(serving) == 2 and set(serving.values()) == {current}, serving   # ingest waited for both
        after = asyncio.run(ask_all(NEW_QUESTION, 4))                          # both processes serve it
        assert all(NEW_FACT in a.answer.text for a in after), after[0].answer.text
    finally:
        engine.close()


def test_worker_settings_are_validated():
    from bot.settings import parse_settings
    from corpus.errors import ConfigError
    assert parse_settings({"web": {"workers": 2, "watch_s": 0.5}}).web.watch_s == 0.5
    for bad in ({"watch_s": 0.0}, {"watch_s": -1.0}, {"workers": -1}):
        with pytest.raises(ConfigError, match=r"\[web\] workers must not be negative and watch_s"):
            parse_settings({"web": bad})


def test_a_watcher_opens_a_new_generation_before_any_question_needs_it(data_dir, embedder):
    settings = settings_for(data_dir)
    answerer = Answerer(settings, embedder, today=TODAY)
    answerer.refresh()
    served = answerer._served[0]
    stop = watch(answerer, every_s=0.05)
    try:
        assert ingest_files(settings.index, embedder, [NEW_ISSUE]).added     # another writer swaps a generation in
        current = Generations(data_dir).current()
        assert current != served
        deadline = time.monotonic() + 10
        while answerer._served[0] != current and time.monotonic() < deadline:
            time.sleep(0.05)
        assert answerer._served[0] == current                 # opened, checksums included, with no question asked
    finally:
        stop.set()
    assert NEW_FACT in answerer.answer(NEW_QUESTION).text


def test_healthz_and_issues_never_wait_behind_answers(built_data_dir, answerer, tmp_path):
    settings = settings_for(built_data_dir)
    slow = SlowAnswerer(answerer)
    engine = Engine(settings, answerer=slow, workers=1)
    with serve_app(app_for(settings, engine)) as url, ThreadPoolExecutor(4) as pool:
        asks = [pool.submit(httpx.post, url + "/api/ask", json={"question": BLOOD}, timeout=60) for _ in range(3)]
        time.sleep(0.3)                                     # three answers queued: about 4.5 s of work
        started = time.monotonic()
        health = httpx.get(url + "/healthz", timeout=30)
        issues = httpx.get(url + "/api/issues", timeout=30)
        waited = time.monotonic() - started
        assert health.status_code == 200 and health.json()["index_loaded"] is True
        assert issues.status_code == 200 and len(issues.json()["issues"]) == 5
        assert waited < ANSWER_S, waited                    # not behind even one answer
        assert all(f.result().status_code == 200 for f in asks)
    engine.close()


def test_a_question_whose_client_left_is_not_computed(built_data_dir, answerer):
    settings = settings_for(built_data_dir)
    slow = SlowAnswerer(answerer)
    engine = Engine(settings, answerer=slow, workers=1)
    with serve_app(app_for(settings, engine)) as url:
        def impatient(n: int):
            try:
                httpx.post(url + "/api/ask", json={"question": f"{BLOOD} {n}"}, timeout=0.5)
            except httpx.TimeoutException:
                pass                                        # the client gives up and closes the connection
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(impatient, range(4)))
        time.sleep(ANSWER_S * 2.5)                          # the first one, already started, finishes
        assert slow.calls < 4 and engine.pool.dropped >= 4 - slow.calls
        done = httpx.post(url + "/api/ask", json={"question": BLOOD}, timeout=60)
        assert done.status_code == 200 and "21200" in done.json()["answer"]
    engine.close()


@pytest.mark.slow
def test_http_load_benchmark_serves_everything_with_one_and_two_workers(built_data_dir):
    out = subprocess.run([sys.executable, "-m", "bot.measure.http_load", "--clients", "10", "--questions", "60",
                          "--workers", "1", "2", "--data-dir", str(built_data_dir)],
                         capture_output=True, text=True, cwd=REPO, timeout=1500)
    assert out.returncode == 0, out.stderr[-3000:]
    runs = re.findall(r"workers (\d+): 60 questions .* = ([\d.]+) requests/s; .* errors (\d+)", out.stdout)
    assert [(w, e) for w, _, e in runs] == [("1", "0"), ("2", "0")], out.stdout
    assert "throughput 2 workers / 1 worker" in out.stdout
