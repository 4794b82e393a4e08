"""Fit the reader on labelled questions, report cross-validated figures, write model.json.

Training data:
- labelled question sets (dev.jsonl / more.jsonl format: `answer_must` names the facts): a sentence of
  a gold article holding one of those facts is a positive example for the sentence model; whether the
  question is in scope at all is the label of the answerability model;
- a synthetic set made from the corpus itself: for every sentence holding a count in some unit, a
  date, or an enumeration, a templated question that sentence answers.

Cross-validation keeps every question about one article in the same fold (synthetic questions too),
so a fold's figures come from articles its model never saw. Figures are computed the way `eval`
computes them, end to end through the answerer.
"""
from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bot.measure.evaluate import score_answer, squash
from bot.reader.features import QUESTION_FEATURES, SENTENCE_FEATURES, reading_features
from bot.reader.listing import LISTING_FEATURES, candidates as listing_candidates
from bot.reader.model import Logistic, ReaderModel, article_cover, below_floor, choose, sentence_scores
from bot.reader.types import answer_types
from bot.wording import dated_only, names_only_a_time
from index.chunking import split_sentences
from index.keywords import query_terms

log = logging.getLogger(__name__)

FLOOR_GRID = (0.05, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3)
FLOOR_FALSE_ABSTENTION = 0.01  # the coverage floor may make at most this share of in-scope training questions abstain
FALSE_ABSTENTION = 0.02       # the threshold lets at most this share of in-scope training questions abstain


@dataclass
class Example:
    """One labelled question with its gathered evidence."""

    row: dict
    group: int                   # article the question is about (its fold is the article's fold)
    synthetic: bool
    prepared: object             # bot.answer.Prepared
    y: np.ndarray                # per evidence sentence: holds a fact asked for
    gold: frozenset = frozenset()   # the ids of the articles holding its gold evidence


def _gold_articles(row: dict, articles: dict) -> set[int]:
    found = set()
    for evidence in row.get("gold", []):
        for aid, a in articles.items():
            text = squash(a.text)
            if any(e in text for e in evidence):
                found.add(aid)
                break
    return found


def _labels(row: dict, prepared, gold: set[int]) -> np.ndarray:
    ev = prepared.evidence
    alts = [alt for group in row.get("answer_must", []) for alt in group]
    return np.array([float(ev.hits[int(ev.article_of[i])].article.id in gold and any(a in squash(s) for a in alts))
                     for i, s in enumerate(ev.sentences)], dtype=np.float32)


# --- synthetic questions from the corpus ------------------------------------------------------------

def synthetic_rows(articles: dict, limit: int = 400, seed: int = 7) -> list[dict]:
    """Templated questions answered by one sentence each: counts in a unit, dates, enumerations."""
    types = answer_types()
    units = "|".join(re.escape(u) for u in types.units)
    count = re.compile(rf"(\d+(?:\.\d+)?)\s*(万|余)?\s*({units})")
    day = re.compile(r"\d{1,2}月\d{1,2}日")
    listing = re.compile(r"([^、，。；]{2,16}、){2,}[^、，。；]{2,16}")
    rows = []
    for aid, a in articles.items():
        title_terms = [t for t in query_terms(a.title) if len(t) > 1][:3]
        sentences = split_sentences(a.body)
        for s in sentences:
            for m in count.finditer(s):
                clause = re.split(r"[，,；;]", s[:m.start()])[-1]
                terms = [t for t in query_terms(clause) if len(t) > 1][-3:]
                if not terms:
                    continue
                rows.append({"q": "".join(title_terms[:2] + terms) + f"有多少{m.group(3)}？",
                             "answer_must": [[m.group(0)]], "group": aid})
            for m in day.finditer(s):
                if sum(m.group(0) in x for x in sentences) != 1:
                    continue
                rest = [t for t in query_terms(s[m.end():m.end() + 30]) if len(t) > 1][:3]
                rows.append({"q": "".join(rest or title_terms) + "是哪天？", "answer_must": [[m.group(0)]],
                             "group": aid})
            m = listing.search(s)
            if m:
                clause = re.split(r"[，,；;]", s[:m.start()])[-1]
                terms = [t for t in query_terms(clause) if len(t) > 1][-2:]
                rows.append({"q": "".join(title_terms[:2] + terms) + "都有哪些？",
                             "answer_must": [[m.group(0)[:12]]], "group": aid})
    random.Random(seed).shuffle(rows)
    return rows[:limit]


# --- gathering, fitting, cross-validation ---------------------------------------------------------------

def gather(answerer, rows: list[dict], synthetic: bool, progress: bool = True) -> list[Example]:
    articles = answerer.store.all_articles()
    examples = []
    for row in tqdm(rows, desc="synthetic" if synthetic else "questions", unit="q", disable=not progress):
        prepared = answerer.prepare(row["q"])
        if prepared is None or not prepared.hits:
            continue
        if synthetic:
            gold = {row["group"]}
            group = row["group"]
        else:
            gold = _gold_articles(row, articles)
            group = min(gold) if gold else prepared.hits[0].article.id
        examples.append(Example(row, group, synthetic, prepared, _labels(row, prepared, gold), frozenset(gold)))
    return examples


# Answerability grows with these features (+1) or falls with them (-1); 0 leaves the sign to the data.
# With a few hundred questions, unconstrained weights of correlated features came out with signs that
# make no sense (more of the question printed -> less answerable) and refused plain questions.
ANSWERABLE_SIGNS = {
    "p_max": 1, "p_second": 1, "p_top_article": 1, "art_cov": 1, "art_bigram": 1, "agreed": 1, "cos_top": 1,
    "unknown_share": -1, "latin": 0, "strict_asked": 0, "strict_missing": -1, "place_mismatch": -1,
    "year_mismatch": -1, "plan": -1, "asked_types": 0, "n_terms_log": 0, "ev_cov": 1, "ev_bigram": 1,
    "lead_type": 1, "ask_min_art": 1, "ask_min_sent": 1, "focus_art": 1,
}


def _fit_logistic(X: np.ndarray, y: np.ndarray, names: tuple[str, ...], C: float,
                  signs: dict[str, int] | None = None) -> Logistic:
    """A class-balanced L2 logistic regression on standardised features, each weight kept to its sign."""
    from scipy.optimize import minimize
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-6] = 1.0
    Z = (X - mean) / scale
    weight = np.where(y > 0, len(y) / (2.0 * max(y.sum(), 1)), len(y) / (2.0 * max((1 - y).sum(), 1)))

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:-1], theta[-1]
        z = Z @ w + b
        prob = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        value = float(np.sum(weight * (np.logaddexp(0, z) - y * z)) + 0.5 / C * (w @ w))
        g = weight * (prob - y)
        return value, np.r_[Z.T @ g + w / C, g.sum()]

    signs = signs or {}
    bounds = [(0, None) if signs.get(n, 0) > 0 else (None, 0) if signs.get(n, 0) < 0 else (None, None)
              for n in names] + [(None, None)]
    result = minimize(loss, np.zeros(len(names) + 1), jac=True, method="L-BFGS-B", bounds=bounds)
    w, b = result.x[:-1], result.x[-1]
    return Logistic(names, mean.astype(np.float32), scale.astype(np.float32), w.astype(np.float32), float(b))


def _fit_ranker(examples: list["Example"], C: float = 0.1, negatives: int = 15, seed: int = 0) -> Logistic:
    """Pairwise ranking (a sentence holding a fact vs one that does not, within one question), then calibrated.

    The ranking weights come from a logistic regression on feature differences; a one-feature logistic
    regression on the resulting scores (Platt scaling) turns them into probabilities.
    """
    from sklearn.linear_model import LogisticRegression
    X = np.vstack([e.prepared.evidence.X for e in examples])
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale < 1e-6] = 1.0
    rng = np.random.default_rng(seed)
    diffs = []
    for e in examples:
        Z = (e.prepared.evidence.X - mean) / scale
        pos, neg = np.flatnonzero(e.y > 0), np.flatnonzero(e.y == 0)
        for i in pos:
            for j in rng.choice(neg, min(len(neg), negatives), replace=False) if len(neg) else []:
                diffs.append(Z[i] - Z[j])
    D = np.asarray(diffs)
    ranker = LogisticRegression(C=C, fit_intercept=False, max_iter=3000)
    ranker.fit(np.vstack([D, -D]), np.r_[np.ones(len(D)), np.zeros(len(D))])
    w = ranker.coef_[0]
    scores = ((X - mean) / scale) @ w
    y = np.concatenate([e.y for e in examples])
    platt = LogisticRegression(C=10.0, max_iter=1000).fit(scores[:, None], y)
    a, b = float(platt.coef_[0][0]), float(platt.intercept_[0])
    return Logistic(SENTENCE_FEATURES, mean.astype(np.float32), scale.astype(np.float32),
                    (w * a).astype(np.float32), b)


def _is_quote_question(ex: Example) -> bool:
    return not ex.prepared.question.listing and ex.prepared.evidence.X.shape[0] > 0


def fit(examples: list[Example], meta: dict | None = None) -> ReaderModel:
    """Fit both models on these examples; the threshold keeps FALSE_ABSTENTION of in-scope ones answered."""
    train = [e for e in examples if _is_quote_question(e) and e.y.any()]
    sentence = _fit_ranker(train)
    real = [e for e in examples if not e.synthetic and _is_quote_question(e)]
    rows, labels = [], []
    for e in real:
        ev = e.prepared.evidence
        p, by_ask = sentence_scores(sentence, ev)
        chosen = list(choose(p, ev.article_of, article_cover(ev), by_ask))
        rows.append(reading_features(e.prepared.evidence, p, chosen))
        labels.append(float(bool(e.row.get("gold"))))
    QX, qy = np.vstack(rows), np.asarray(labels)
    answerable = _fit_logistic(QX, qy, QUESTION_FEATURES, C=0.5, signs=ANSWERABLE_SIGNS)
    scores = answerable(QX)
    in_scope = np.sort(scores[qy == 1])
    threshold = float(in_scope[int(FALSE_ABSTENTION * len(in_scope))]) - 1e-6 if len(in_scope) else 0.5
    listing, listing_threshold = _fit_listing([e for e in examples if not e.synthetic and is_listing(e)])
    return ReaderModel(sentence, answerable, threshold, meta or {}, _coverage_floor(QX, qy), listing, listing_threshold)


LISTING_C = 0.1                 # L2 strength of the listing model (few questions, correlated features)
LISTING_THRESHOLDS = tuple(round(0.3 + 0.05 * i, 2) for i in range(11))   # 0.3 .. 0.8


def is_listing(ex: Example) -> bool:
    """A question the answerer lists articles for (哪些…, or a date with nothing else the bulletins print)."""
    p = ex.prepared
    return p.question.listing or dated_only(p.question, p.store, p.weights.unknown)


def _fit_listing(examples: list[Example]) -> tuple[Logistic | None, float]:
    """Fit which candidate articles a listing question asks for (labels: its gold articles), and the threshold
    under which the most training questions get exactly their gold articles listed."""
    per_question = []
    for e in examples:
        p = e.prepared
        if names_only_a_time(p.question, p.weights.unknown):        # listed by the time alone, not by the model
            continue
        found, X = listing_candidates(p.question, p.weights, p.hits, p.retriever, p.store.all_articles())
        if len(found):
            per_question.append((found, X, np.array([float(a.id in e.gold) for a in found])))
    if not per_question or not any(y.any() for _, _, y in per_question):
        return None, 0.5
    model = _fit_logistic(np.vstack([X for _, X, _ in per_question]), np.concatenate([y for _, _, y in per_question]),
                          LISTING_FEATURES, C=LISTING_C)
    scores = [model(X) for _, X, _ in per_question]

    def exact(threshold: float) -> int:
        return sum(bool(np.array_equal(s >= threshold, y > 0)) for s, (_, _, y) in zip(scores, per_question))
    best = max(LISTING_THRESHOLDS, key=lambda t: (exact(t), t))
    return model, float(best)


def _coverage_floor(QX: np.ndarray, qy: np.ndarray) -> float:
    """The highest coverage floor that leaves FLOOR_FALSE_ABSTENTION of in-scope questions abstaining at most."""
    best = 0.0
    for floor in FLOOR_GRID:
        below = np.array([below_floor(row, floor) for row in QX], dtype=bool)
        if below[qy == 1].mean() <= FLOOR_FALSE_ABSTENTION and below[qy == 0].sum() >= below[qy == 1].sum():
            best = floor
    return best


def folds_of(examples: list[Example], k: int, seed: int = 11) -> dict[int, int]:
    groups = sorted({e.group for e in examples})
    random.Random(seed).shuffle(groups)
    return {g: i % k for i, g in enumerate(groups)}


@dataclass
class Figures:
    n: int = 0
    in_scope: int = 0
    correct: int = 0
    correct_200: int = 0
    found5: float = 0.0
    abstain_in: int = 0
    abstain_out: int = 0

    def add(self, row: dict, answer) -> None:
        s = score_answer(row, answer, k=5)
        self.n += 1
        self.correct += s["correct"]
        self.correct_200 += s["correct_200"]
        if row.get("gold"):
            self.in_scope += 1
            self.found5 += s["recall"]
            self.abstain_in += answer.abstained
        else:
            self.abstain_out += answer.abstained

    def line(self, name: str) -> str:
        out = self.n - self.in_scope
        return (f"{name:<10} n={self.n:<4} accuracy {self.correct / max(self.n, 1):.3f}   "
                f"within 200 chars {self.correct_200 / max(self.n, 1):.3f}   "
                f"Recall@5 {self.found5 / max(self.in_scope, 1):.3f}   "
                f"abstains: unanswerable {self.abstain_out / max(out, 1):.3f}  "
                f"answerable {self.abstain_in / max(self.in_scope, 1):.3f}")


def cross_validate(answerer, examples: list[Example], k: int = 5, progress: bool = True) -> dict[str, Figures]:
    """Fit on k-1 folds of articles, answer the questions of the held-out fold; figures per question set."""
    from bot.settings import replace
    fold = folds_of(examples, k)
    figures: dict[str, Figures] = {}
    saved_reader, saved_settings = answerer._reader, answerer.settings
    try:
        answerer.settings = replace(saved_settings, answer={"reader": "fitted"})
        for f in tqdm(range(k), desc="folds", disable=not progress):
            model = fit([e for e in examples if fold[e.group] != f])
            answerer.reader = model
            for e in examples:
                if e.synthetic or fold[e.group] != f:
                    continue
                answer = answerer.answer(e.row["q"], k=10)
                for name in (e.row.get("set", "questions"), "all"):
                    figures.setdefault(name, Figures()).add(e.row, answer)
    finally:
        answerer._reader, answerer.settings = saved_reader, saved_settings
    return figures


def rules_figures(answerer, examples: list[Example]) -> dict[str, Figures]:
    """The hand-set reader on the same questions (nothing fitted: no folds; its rules were grown on dev)."""
    from bot.settings import replace
    saved = answerer.settings
    figures: dict[str, Figures] = {}
    try:
        answerer.settings = replace(saved, answer={"reader": "rules"})
        for e in examples:
            if not e.synthetic:
                answer = answerer.answer(e.row["q"], k=10)
                for name in (e.row.get("set", "questions"), "all"):
                    figures.setdefault(name, Figures()).add(e.row, answer)
    finally:
        answerer.settings = saved
    return figures


BUNDLED_QUESTIONS = Path(__file__).with_name("questions.jsonl")
SHARED_SETS = ("dev.jsonl", "more.jsonl")


def default_question_files() -> list[Path]:
    """The project's own labelled questions, plus the shared dev/more sets when they sit beside the checkout."""
    shared = Path(__file__).resolve().parents[3] / "shared" / "eval"
    found = [BUNDLED_QUESTIONS] if BUNDLED_QUESTIONS.is_file() else []
    return found + [shared / name for name in SHARED_SETS if (shared / name).is_file()]


def save(model: ReaderModel, path: Path | None = None) -> Path:
    import json
    target = path or Path(__file__).with_name("model.json")
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(model.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(target)
    return target
