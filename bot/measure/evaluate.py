"""Score the bot on a JSONL question set shaped like ../shared/eval/dev.jsonl."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from corpus.errors import BulletinBotError

_SPACE = re.compile(r"\s+")
HEAD_CHARS = 200           # a resident reads the start: key facts must be within these (whitespace removed)


def squash(text: str) -> str:
    """The text with all whitespace removed: how evidence, facts and answers are compared (see the question
    sets' README)."""
    return _SPACE.sub("", text)


@dataclass(frozen=True)
class EvalReport:
    """The figures of one evaluation run."""

    questions: int
    in_scope: int
    out_of_scope: int
    recall_at_k: float
    mrr_at_10: float
    accuracy: float            # over all questions: out-of-scope ones are correct when abstained
    false_abstention: float
    oos_abstention: float
    k: int
    failures: tuple[dict, ...]
    accuracy_200: float = 0.0  # the same, reading only the answer's first HEAD_CHARS characters

    def lines(self) -> list[str]:
        return [f"questions {self.questions} (in scope {self.in_scope}, out of scope {self.out_of_scope})",
                f"Recall@{self.k} {self.recall_at_k:.3f}   MRR@10 {self.mrr_at_10:.3f}",
                f"answer accuracy {self.accuracy:.3f}   within {HEAD_CHARS} chars {self.accuracy_200:.3f}   "
                f"false abstention {self.false_abstention:.3f}",
                f"out-of-scope abstention {self.oos_abstention:.3f}"]


def load_questions(path: Path) -> list[dict]:
    """Read a JSONL question set, with a clear error for a malformed line."""
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            row["q"], row.setdefault("gold", []), row.setdefault("answer_must", [])
        except (ValueError, KeyError, TypeError):
            raise BulletinBotError(f"{path}:{n}: not a question line (JSON with at least \"q\")") from None
        rows.append(row)
    return rows


def _first_match(passages: list[str], gold: list[list[str]]) -> tuple[int, set[int]]:
    """Return (1-based rank of the first passage matching any gold article or 0, gold articles found in them)."""
    first, found = 0, set()
    for rank, passage in enumerate(passages, start=1):
        for g, evidence in enumerate(gold):
            if any(e in passage for e in evidence):
                found.add(g)
                first = first or rank
    return first, found


def score_answer(row: dict, answer, k: int = 5) -> dict:
    """Score one answer as the question sets' README says: recall@k, first rank, correct, correct in 200 chars."""
    text = squash(answer.text)
    if not row["gold"]:
        return {"correct": bool(answer.abstained), "correct_200": bool(answer.abstained), "recall": 0.0, "first": 0}
    passages = [squash(s.text) for s in answer.sources]
    _, found_k = _first_match(passages[:k], row["gold"])
    first, _ = _first_match(passages[:10], row["gold"])
    has = lambda t: all(any(alt in t for alt in group) for group in row["answer_must"])      # noqa: E731
    return {"correct": not answer.abstained and has(text),
            "correct_200": not answer.abstained and has(text[:HEAD_CHARS]),
            "recall": len(found_k) / len(row["gold"]), "first": first}


def evaluate(answerer, rows: list[dict], k: int = 5, progress: bool = False) -> EvalReport:
    """Answer every question and compute Recall@k, MRR@10, accuracy and abstention rates."""
    recall, mrr, correct, correct_200, false_abst, oos_abst, failures = [], [], 0, 0, 0, 0, []
    in_scope = [r for r in rows if r["gold"]]
    for row in tqdm(rows, desc="eval", unit="q", disable=not progress):
        answer = answerer.answer(row["q"], k=max(k, 10))
        score = score_answer(row, answer, k)
        if not row["gold"]:
            oos_abst += answer.abstained
        else:
            recall.append(score["recall"])
            mrr.append(1.0 / score["first"] if score["first"] else 0.0)
            false_abst += answer.abstained
        correct += score["correct"]
        correct_200 += score["correct_200"]
        if not score["correct"]:
            failures.append({"id": row.get("id"), "q": row["q"], "abstained": answer.abstained,
                             "answer": answer.text})
    n_in, n_out = len(in_scope), len(rows) - len(in_scope)
    n = max(len(rows), 1)
    return EvalReport(len(rows), n_in, n_out, sum(recall) / max(n_in, 1), sum(mrr) / max(n_in, 1),
                      correct / n, false_abst / max(n_in, 1), oos_abst / max(n_out, 1), k,
                      tuple(failures), correct_200 / n)
