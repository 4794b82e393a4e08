"""The labelled question sets the project ships are consistent with the bundled bulletins.

Every gold evidence string must occur exactly once in the whitespace-stripped corpus and every
answer_must group must be printed in a gold issue: a cleaning change that alters the text, or a
hand-edited label, otherwise makes the figures silently wrong.
"""
from __future__ import annotations

import pytest

from bot.measure.evaluate import load_questions, squash
from bot.reader.fit import BUNDLED_QUESTIONS
from tests.conftest import BULLETINS, QUESTIONS, REPO

HELDOUT = REPO / "tests" / "data" / "heldout.jsonl"
SETS = [BUNDLED_QUESTIONS, QUESTIONS, HELDOUT]
KEYS = {"id", "q", "kind", "gold", "answer_must", "note"}


def _corpus() -> dict[str, str]:
    return {p.stem: squash(p.read_text(encoding="utf-8")) for p in sorted(BULLETINS.glob("*.txt"))}


def problems_of(row: dict, corpus: dict[str, str]) -> list[str]:
    """What is wrong with one labelled question (empty when nothing is)."""
    if set(row) < KEYS:
        return [f"missing {sorted(KEYS - set(row))}"]
    if row["kind"] == "out_of_scope":
        return [] if not row["gold"] and not row["answer_must"] else ["out of scope with gold or answer_must"]
    found, issues = [], set()
    if not row["gold"] or not row["answer_must"]:
        found.append("in scope without gold or answer_must")
    for article in row["gold"]:
        for evidence in article:
            count = sum(text.count(evidence) for text in corpus.values())
            if not 8 <= len(evidence) <= 30 or count != 1:
                found.append(f"evidence {evidence!r}: {len(evidence)} characters, printed {count} times")
            issues |= {name for name, text in corpus.items() if evidence in text}
    for group in row["answer_must"]:
        if not any(squash(alt) in corpus[name] for alt in group for name in issues):
            found.append(f"none of {group} printed in {sorted(issues)}")
    return found


@pytest.mark.parametrize("path", SETS, ids=lambda p: p.name)
def test_every_shipped_question_is_labelled_against_the_bundled_bulletins(path):
    corpus = _corpus()
    rows = load_questions(path)
    assert len({r["id"] for r in rows}) == len(rows) > 30
    bad = {r["id"]: p for r in rows if (p := problems_of(r, corpus))}
    assert not bad, bad


def test_the_check_finds_broken_labels():
    corpus = _corpus()
    row = load_questions(HELDOUT)[0]
    assert problems_of(row, corpus) == []
    evidence = row["gold"][0][0]
    assert problems_of(dict(row, gold=[[evidence[:-1] + "※"]]), corpus)                  # not printed
    assert problems_of(dict(row, gold=[row["gold"][0] + ["家庭医生签约服务"]]), corpus)       # printed 7 times
    assert problems_of(dict(row, gold=[[evidence[:7]]]), corpus)                          # too short to be evidence
    assert problems_of(dict(row, answer_must=[["没有印的事实"]]), corpus)                   # fact not printed
    assert problems_of(dict(row, kind="out_of_scope"), corpus)                            # out of scope with gold
    assert problems_of({"id": "z", "q": "?"}, corpus)                                      # keys missing


def test_the_heldout_set_is_never_fitted():
    from bot.reader.fit import default_question_files
    assert HELDOUT not in default_question_files()
