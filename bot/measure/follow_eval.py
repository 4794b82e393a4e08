"""Precision and recall of topic matching on labelled topics, at the configured thresholds and cross-validated.

A label file holds one topic per line: {"topic": "义诊 镇平", "matches": [["2025-08-05", "<article title>"], ...]}.
Every retrieved article is scored once; thresholds are then applied to those figures, so the grid search of
the cross-validation costs nothing beyond the first pass.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

from bot.follow.match import Candidate, TopicMatcher, decide

COVERAGE_GRID = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
MENTIONS_GRID = (1.0, 1.5, 2.0, 2.5, 3.0)
ANSWERABLE_GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.01)      # 1.01: the reader's path off


@dataclass(frozen=True)
class Labelled:
    topic: str
    matches: frozenset[tuple[str, str]]      # (issue date, title)
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True)
class Figures:
    precision: float
    recall: float
    tp: int
    fp: int
    fn: int

    def line(self, name: str) -> str:
        return (f"{name}: precision {self.precision:.3f}  recall {self.recall:.3f}  "
                f"(matched right {self.tp}, wrongly {self.fp}, missed {self.fn})")


def load_labels(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def score_topics(matcher: TopicMatcher, rows: list[dict]) -> tuple[list[Labelled], list[str]]:
    """Retrieve and read every labelled topic once; return them and the labelled articles the index lacks."""
    indexed = {(a.issue_key, a.title) for a in matcher.answerer.store.all_articles().values()}
    missing = sorted({f"{d} {t}" for row in rows for d, t in row["matches"] if (d, t) not in indexed})
    scored = [Labelled(row["topic"], frozenset(map(tuple, row["matches"])), tuple(matcher.candidates(row["topic"])))
              for row in rows]
    return scored, missing


def figures(topics: list[Labelled], min_coverage: float, min_mentions: float, min_answerable: float) -> Figures:
    """Count matched (topic, article) pairs against the labels, micro-averaged over topics."""
    tp = fp = fn = 0
    for t in topics:
        found = {(c.article.issue_key, c.article.title) for c in t.candidates if decide(c, min_coverage, min_mentions, min_answerable)}
        tp += len(found & t.matches)
        fp += len(found - t.matches)
        fn += len(t.matches - found)
    return Figures(tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0, tp, fp, fn)


def best_thresholds(topics: list[Labelled]) -> tuple[float, float, float]:
    """Return the grid point with the best F1 on these topics (ties: the stricter thresholds)."""
    def f1(point) -> float:
        f = figures(topics, *point)
        return 2 * f.precision * f.recall / (f.precision + f.recall) if f.precision + f.recall else 0.0
    return max(itertools.product(COVERAGE_GRID, MENTIONS_GRID, ANSWERABLE_GRID), key=lambda p: (f1(p), p))


def cross_validate(topics: list[Labelled], folds: int) -> tuple[Figures, list[tuple[float, float, float]]]:
    """Choose thresholds on all folds but one, count on the one left out; return the pooled counts and choices."""
    tp = fp = fn = 0
    chosen = []
    for k in range(folds):
        train = [t for i, t in enumerate(topics) if i % folds != k]
        test = [t for i, t in enumerate(topics) if i % folds == k]
        point = best_thresholds(train)
        chosen.append(point)
        f = figures(test, *point)
        tp, fp, fn = tp + f.tp, fp + f.fp, fn + f.fn
    return Figures(tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0, tp, fp, fn), chosen
