"""Features of (question, sentence) pairs and of a whole question's evidence, for the fitted reader.

Every feature is meant to carry over to wording nobody here wrote: meaning (e5 cosine), character
bigrams (robust to segmentation and colloquial variants: 家庭大夫 / 家庭医生), IDF-weighted term
coverage, whether the sentence shows the kind of answer asked for (a count in the unit asked, a date,
a place, a list ...), and the sentence's position and length. None names a word of one question.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np

from bot.question import Question, Weights
from bot.reader.types import AnswerTypes, answer_types
from index.keywords import STOPWORDS
from index.retrieval import Hit

CANDIDATE_ARTICLES = 3        # articles whose sentences the reader scores

SENTENCE_FEATURES = (
    "cos", "cos_rel", "cos_gap", "cov_all", "cov_ask", "bigram", "bigram_ask",
    "type_share", "type_miss", "unit_match", "new_number", "enumeration",
    "first", "last", "pos", "log_len", "art_rank0", "art_rank", "art_score", "art_cov", "title_overlap",
    "type_rare", "type_focus", "cue",
)
# Ranking is within one question: these features also enter as their gap to the question's best sentence.
RELATIVE = ("cov_all", "cov_ask", "bigram", "bigram_ask", "type_share", "cos")
SENTENCE_FEATURES = SENTENCE_FEATURES + tuple(f"{name}_gap_q" for name in RELATIVE)
QUESTION_FEATURES = (
    "p_max", "p_second", "p_top_article", "art_cov", "art_bigram", "agreed", "cos_top",
    "unknown_share", "latin", "strict_asked", "strict_missing", "place_mismatch", "year_mismatch",
    "plan", "asked_types", "n_terms_log", "ev_cov", "ev_bigram", "lead_type",
)

_HAN_RUN = re.compile(r"[\u4e00-\u9fff]+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_LATIN = re.compile(r"[A-Za-z]")
_YEAR = re.compile(r"((?:19|20)\d{2})\s*年")
_PLAN = re.compile(r"计划|拟|将于|将在|将要|预计|下一步|即将")
_WH_CHARS = set("吗呢吧啊呀么嘛哪啥谁几多少怎什")


def bigrams(text: str) -> set[str]:
    """Han-character bigrams of the text, leaving out those made only of function words."""
    grams = set()
    for run in _HAN_RUN.findall(text):
        for i in range(len(run) - 1):
            g = run[i:i + 2]
            if g in STOPWORDS or (g[0] in _WH_CHARS or g[1] in _WH_CHARS):
                continue
            grams.add(g)
    return grams


@lru_cache(maxsize=1)
def places() -> tuple[str, ...]:
    text = resources.files("corpus").joinpath("places.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def named_places(text: str) -> set[str]:
    return {p for p in places() if p in text}


@dataclass
class Evidence:
    """One question with the sentences of its candidate articles and their features (model-free)."""

    question: Question
    hits: list[Hit]
    sentences: list[str]
    article_of: np.ndarray           # index into hits, per sentence
    X: np.ndarray                    # sentences x SENTENCE_FEATURES
    q: dict[str, float] = field(default_factory=dict)   # question-level features not needing the model
    asked: tuple = ()                # AnswerType objects asked for
    strict_asked: tuple = ()


def _cues(texts: list[str], question: Question) -> list[float]:
    """Per sentence: for each ask clause's answer cue it shows, 1 / the number of the article's sentences showing it."""
    from bot.question import CUES
    out = [0.0] * len(texts)
    for clause, _ in question.asks:
        for asks, has in CUES:
            if asks.search(clause):
                flags = [bool(has.search(t)) for t in texts]
                total = sum(flags)
                for i, f in enumerate(flags):
                    if f:
                        out[i] = max(out[i], 1.0 / total)
    return out


_SENT_CLAUSE = re.compile(r"[^，,；;：:]+")


def _type_focus(sentence: str, asked, unit_re, q_grams: set[str]) -> float:
    """Best clause that shows the asked kind of answer, by how many question bigrams it and its predecessor hold."""
    if not asked or not q_grams:
        return 0.0
    clauses = _SENT_CLAUSE.findall(sentence)
    best = 0.0
    for i, clause in enumerate(clauses):
        shows = (unit_re.search(clause) if unit_re else None) or any(t.shown_in(clause) for t in asked)
        if shows:
            window = bigrams("".join(clauses[max(i - 1, 0):i + 1]))
            best = max(best, (1.0 if unit_re and unit_re.search(clause) else 0.5) + len(window & q_grams) / len(q_grams))
    return best


def _share(found: int, total: int) -> float:
    return found / total if total else 0.0


def build_evidence(question: Question, hits: list[Hit], weights: Weights, query: np.ndarray,
                   sentence_vectors, types: AnswerTypes | None = None) -> Evidence:
    """Compute every sentence's features for the question (no fitted weights needed)."""
    types = types or answer_types()
    hits = hits[:CANDIDATE_ARTICLES]
    text = question.text
    asked = types.asked(text)
    strict = tuple(t for t in asked if t.strict)
    unit = types.asked_unit(text)
    unit_re = types.unit_pattern(unit) if unit else None
    q_numbers = set(_NUMBER.findall(text))
    q_grams = bigrams(text)
    ask_grams = [bigrams(c) for c, _ in question.asks]
    sentences: list[str] = []
    rows: list[list[float]] = []
    owner: list[int] = []
    top_score = hits[0].score if hits and hits[0].score else 1.0
    for h_i, hit in enumerate(hits):
        found, vectors = sentence_vectors(hit.article)
        texts = [s.text for s in found]
        if not texts:
            continue
        cos = vectors @ query
        lo, hi = float(cos.min()), float(cos.max())
        spread = hi - lo
        title_grams = bigrams(hit.article.title)
        art_cov = weights.coverage(hit.article.text)
        n = len(texts)
        shown_by = [[t.shown_in(s) for t in asked] for s in texts]
        cue = _cues(texts, question)
        per_type = [sum(col) for col in zip(*shown_by)] if asked else []
        for i, s in enumerate(texts):
            grams = bigrams(s)
            shows = shown_by[i]
            numbers = set(_NUMBER.findall(s))
            rows.append([
                float(cos[i]),
                (float(cos[i]) - lo) / spread if spread > 0 else 0.0,
                float(cos[i]) - hi,
                weights.coverage(s),
                max((weights.coverage(s, t) for _, t in question.asks), default=0.0),
                _share(len(q_grams & grams), len(q_grams)),
                max((_share(len(g & grams), len(g)) for g in ask_grams), default=0.0),
                _share(sum(shows), len(asked)),
                float(bool(asked) and not any(shows)),
                float(bool(unit_re and unit_re.search(s))),
                float(bool(numbers - q_numbers)),
                float(bool(re.search(r"(?:[^、，。；]{1,16}、){2,}", s))),
                float(i == 0), float(i == n - 1), i / max(n - 1, 1), math.log(1 + len(s)),
                float(h_i == 0), float(h_i), hit.score / top_score, art_cov,
                _share(len(title_grams & grams), len(grams)),
                # an asked kind of answer that few sentences of the article show points at them
                max((1.0 / per_type[j] for j, shown in enumerate(shows) if shown), default=0.0),
                _type_focus(s, asked, unit_re, q_grams),
                cue[i],
            ])
            sentences.append(s)
            owner.append(h_i)
    X = np.asarray(rows, dtype=np.float32).reshape(len(rows), len(SENTENCE_FEATURES) - len(RELATIVE))
    if len(rows):
        base = list(SENTENCE_FEATURES)
        cols = X[:, [base.index(name) for name in RELATIVE]]
        X = np.hstack([X, cols - cols.max(axis=0)])
    else:
        X = np.zeros((0, len(SENTENCE_FEATURES)), dtype=np.float32)
    ev = Evidence(question, hits, sentences, np.asarray(owner, dtype=np.int64), X, asked=asked, strict_asked=strict)
    ev.q = _question_features(ev, weights)
    return ev


def _question_features(ev: Evidence, weights: Weights) -> dict[str, float]:
    text = ev.question.text
    if not ev.hits:
        return {}
    top = ev.hits[0].article
    unknown = [t for t in weights.idf if t in weights.unknown]
    total = sum(weights.idf.values()) or 1.0
    asked_places = named_places(text)
    years = {int(y) for y in _YEAR.findall(text)}
    article_years = {d.year for d in top.event_dates} | {top.issue_date.year} | {int(y) for y in _YEAR.findall(top.text)}
    q_grams = bigrams(text)
    return {
        "art_cov": weights.coverage(top.text),
        "art_bigram": _share(len(q_grams & bigrams(top.text)), len(q_grams)),
        "agreed": float(ev.hits[0].agreed),
        "cos_top": float(ev.hits[0].cosine),
        "unknown_share": sum(weights.idf[t] for t in unknown) / total,
        "latin": _share(len(_LATIN.findall(text)), len(text)),
        "strict_asked": float(bool(ev.strict_asked)),
        "place_mismatch": float(bool(asked_places) and not any(p in top.text for p in asked_places)),
        "year_mismatch": float(bool(years) and not (years & article_years)),
        "asked_types": float(len(ev.asked)),
        "n_terms_log": math.log(1 + len(weights.idf)),
    }


def reading_features(ev: Evidence, p: np.ndarray, chosen: list[int]) -> np.ndarray:
    """The question-level feature vector, once sentence probabilities p are known."""
    q = dict(ev.q)
    if len(p) == 0 or not ev.hits:
        return np.zeros(len(QUESTION_FEATURES), dtype=np.float32)
    order = np.argsort(-p)
    q["p_max"] = float(p[order[0]])
    q["p_second"] = float(p[order[1]]) if len(order) > 1 else 0.0
    q["p_top_article"] = float(p[ev.article_of == 0].max()) if (ev.article_of == 0).any() else 0.0
    quoted = " ".join(ev.sentences[i] for i in chosen)
    names = SENTENCE_FEATURES
    lead = ev.X[chosen[0]] if chosen else np.zeros(len(names))
    q["ev_cov"] = float(max(ev.X[i][names.index("cov_all")] for i in chosen)) if chosen else 0.0
    q["ev_bigram"] = float(max(ev.X[i][names.index("bigram")] for i in chosen)) if chosen else 0.0
    q["lead_type"] = float(lead[names.index("type_share")])
    q["strict_missing"] = float(any(not t.shown_in(quoted) for t in ev.strict_asked))
    q["plan"] = float(bool(chosen) and bool(_PLAN.search(ev.sentences[chosen[0]])))
    return np.asarray([q.get(name, 0.0) for name in QUESTION_FEATURES], dtype=np.float32)
