"""Faults: a killed writer, readers during writes, damaged files, two writers, backup and restore."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.answer import Answerer
from bot.results import Answer
from bot.querylog import QueryLog
from index.errors import IndexBusy, IndexCorrupt
from index.archive import backup, restore
from index.build import build_index, index_identity, ingest_files
from index.generations import Generations
from index.store import IndexStore
from bot.measure.kill_anywhere import state
from tests.conftest import BULLETINS, REPO, TODAY, settings_for

QUESTION = "市六院7月那次组织献血，一共献了多少毫升？"


def _cli(data_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bot", "--data-dir", str(data_dir), *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _corpus_digest(data_dir: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (data_dir / "bulletins").iterdir()}


def _new_issue(tmp_path: Path, day: int, fact: str) -> Path:
    text = (BULLETINS / "2025-07-15.txt").read_text(encoding="utf-8")
    text = text.replace("2025 年 7 月 15 日", f"2025 年 8 月 {day} 日").replace("21200 毫升", fact)
    path = tmp_path / f"new-{day}.txt"
    path.write_text(text, encoding="utf-8")
    return path


def _wait_for_new_generation(data_dir: Path, served: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(g != served for g in (data_dir / "index").glob("gen-*")):
            time.sleep(0.5)                           # let it write into the new generation for a moment
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the writer never started a new generation")


def _answers(data_dir: Path, embedder) -> Answer:
    return Answerer(settings_for(data_dir), embedder, today=TODAY).answer(QUESTION)


@pytest.mark.slow
def test_sigkill_during_reindex_keeps_the_served_index_and_a_rerun_completes(data_dir, embedder):
    (data_dir / "vectors.db").unlink()                # force real embedding work so the kill lands mid-build
    served, corpus = Generations(data_dir).current(), _corpus_digest(data_dir)
    proc = _cli(data_dir, "reindex")
    _wait_for_new_generation(data_dir, served, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert Generations(data_dir).current() == served
    assert _corpus_digest(data_dir) == corpus
    assert "21200" in _answers(data_dir, embedder).text
    half_built = set((data_dir / "index").glob("gen-*")) - {served}
    assert half_built                                 # the killed writer's leftover
    rerun = _cli(data_dir, "reindex")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert Generations(data_dir).current() != served
    # kept: exactly the new generation and the one served before it; the half-built leftover is pruned
    assert set((data_dir / "index").glob("gen-*")) == {Generations(data_dir).current(), served}
    assert "21200" in _answers(data_dir, embedder).text


@pytest.mark.slow      # 15 s: two CLI processes; the fast suite kills an ingest in test_data_safety.py
def test_sigkill_during_ingest_keeps_the_served_index_and_a_rerun_completes(data_dir, embedder, tmp_path):
    new = _new_issue(tmp_path, 1, "88888 毫升")
    served, corpus = Generations(data_dir).current(), _corpus_digest(data_dir)
    proc = _cli(data_dir, "ingest", str(new))
    while proc.poll() is None and not (data_dir / "bulletins" / "2025-08-01.txt").exists():
        pass                                          # killed the instant the corpus folder changes
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = state(data_dir, embedder, settings_for)   # `issues` (rolls a swapped-in ingest forward), corpus, answer
    assert after["agree"], after["why"]
    if Generations(data_dir).current() == served:     # killed before its swap: nothing at all changed
        assert _corpus_digest(data_dir) == corpus and "2025-08-01" not in after["index"]
    assert "21200" in _answers(data_dir, embedder).text
    rerun = _cli(data_dir, "ingest", str(new))
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0 and ("added" in out or "skipped" in out), err
    store = IndexStore(Generations(data_dir).current(), index_identity(settings_for(data_dir), embedder))
    assert [r["key"] for r in store.issues()].count("2025-08-01") == 1
    assert set(_corpus_digest(data_dir)) == set(corpus) | {"2025-08-01.txt"}


@pytest.mark.slow
def test_questions_are_answered_while_another_process_reindexes(data_dir, embedder):
    (data_dir / "vectors.db").unlink()
    answerer = Answerer(settings_for(data_dir), embedder, today=TODAY)
    served = Generations(data_dir).current()
    proc = _cli(data_dir, "reindex")
    errors, answers = [], []
    while proc.poll() is None:
        try:
            answers.append(answerer.answer(QUESTION))
        except Exception as exc:                       # noqa: BLE001 - any error is the failure we look for
            errors.append(exc)
    assert proc.returncode == 0, proc.communicate()
    answers.append(answerer.answer(QUESTION))
    assert not errors
    assert len(answers) > 5 and all("21200" in a.text for a in answers)
    assert answerer._served[0] != served              # the new generation was picked up without a restart


@pytest.mark.parametrize("victim", ["bulletins.db", "vectors.faiss"])
def test_damaged_index_file_is_reported_and_reindex_repairs_it(data_dir, embedder, victim):
    path = Generations(data_dir).current() / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF                      # one flipped byte: checksums must notice
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt):
        IndexStore(path.parent, index_identity(settings_for(data_dir), embedder))
    ask = _cli(data_dir, "ask", QUESTION)
    out, err = ask.communicate(timeout=120)
    assert ask.returncode == 2 and "reindex" in err and "Traceback" not in err
    fix = _cli(data_dir, "reindex")
    assert fix.wait(timeout=300) == 0
    assert "21200" in _answers(data_dir, embedder).text


@pytest.mark.slow
def test_second_ingest_while_one_runs_is_told_to_retry_and_nothing_is_lost(data_dir, embedder, tmp_path):
    first, second = _new_issue(tmp_path, 2, "70001 毫升"), _new_issue(tmp_path, 3, "70002 毫升")
    with Generations(data_dir).write_lock():
        busy = _cli(data_dir, "ingest", str(second))
        out, err = busy.communicate(timeout=120)
    assert busy.returncode == 2 and "稍后" in err
    results: dict[str, object] = {}

    def run(path: Path) -> None:
        for _ in range(200):
            try:
                results[path.name] = ingest_files(settings_for(data_dir), embedder, [path])
                return
            except IndexBusy:
                time.sleep(0.1)

    threads = [threading.Thread(target=run, args=(p,)) for p in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store = IndexStore(Generations(data_dir).current(), index_identity(settings_for(data_dir), embedder))
    keys = [r["key"] for r in store.issues()]
    assert keys.count("2025-08-02") == 1 and keys.count("2025-08-03") == 1
    assert {"2025-08-02.txt", "2025-08-03.txt"} <= set(os.listdir(data_dir / "bulletins"))


@pytest.mark.parametrize("damage", ["deleted", "garbage"])
def test_lost_or_damaged_vector_cache_changes_no_answer(data_dir, embedder, damage):
    from index.vectors import VectorCache
    before = _answers(data_dir, embedder)
    for name in ("vectors.db", "vectors.db-wal", "vectors.db-shm"):
        (data_dir / name).unlink(missing_ok=True)
    if damage == "garbage":
        (data_dir / "vectors.db").write_bytes(b"\x00garbage, not SQLite" * 500)
    after = _answers(data_dir, embedder)           # the quoted article's sentences are embedded again
    assert after.text == before.text and "21200" in after.text
    assert VectorCache(data_dir / "vectors.db").count() > 0
    assert (damage == "garbage") == any(p.name.startswith("vectors.db.damaged-") for p in data_dir.iterdir())


def test_backup_and_restore_round_trip(data_dir, embedder, tmp_path):
    log = QueryLog(data_dir, b"salt")
    answer = _answers(data_dir, embedder)
    log.record(channel="cli", user_id=1, chat_type="private", question=QUESTION, answer=answer, latency_ms=5.0)
    archive = tmp_path / "bb.tar.gz"
    summary = backup(data_dir, archive)
    assert len(summary["bulletins"]) == 5 and summary["querylog"] and summary["vectors"]
    target = tmp_path / "restored"
    restore(archive, target, index_identity(settings_for(target), embedder))
    from index.vectors import VectorCache
    assert VectorCache(target / "vectors.db").count() == VectorCache(data_dir / "vectors.db").count() > 300
    assert _corpus_digest(target) == _corpus_digest(data_dir)
    assert list(QueryLog(target, b"salt").db["queries"].rows)[0]["question"] == QUESTION
    assert "21200" in _answers(target, embedder).text
    with pytest.raises(Exception) as err:
        restore(archive, target, index_identity(settings_for(target), embedder))
    assert "--force" in getattr(err.value, "user_message", "")
    restore(archive, target, index_identity(settings_for(target), embedder), force=True)
    assert any(p.name.startswith("restored.before-restore-") for p in tmp_path.iterdir())
