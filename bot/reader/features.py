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
    "type_rare", "type_focus", "cue", "other_place",
)
# Ranking is within one question: these features also enter as their gap to the question's best sentence.
RELATIVE = ("cov_all", "cov_ask", "bigram", "bigram_ask", "type_share", "cos")
SENTENCE_FEATURES = SENTENCE_FEATURES + tuple(f"{name}_gap_q" for name in RELATIVE)
QUESTION_FEATURES = (
    "p_max", "p_second", "p_top_article", "art_cov", "art_bigram", "agreed", "cos_top",
    "unknown_share", "latin", "strict_asked", "strict_missing", "place_mismatch", "year_mismatch",
    "plan", "asked_types", "n_terms_log", "ev_cov", "ev_bigram", "lead_type",
    "ask_min_art", "ask_min_sent", "focus_art",
)

_HAN_RUN = re.compile(r"[\u4e00-\u9fff]+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_LATIN = re.compile(r"[A-Za-z]")
_YEAR = re.compile(r"((?:19|20)\d{2})\s*年")
_PLAN = re.compile(r"计划|拟|将于|将在|将要|预计|下一步|即将")
_ENUMERATION = re.compile(r"(?:[^、，。；]{1,16}、){2,}")
_WH_CHARS = set("吗呢吧啊呀么嘛哪啥谁几多少怎什")


@lru_cache(maxsize=16384)
def bigrams(text: str) -> frozenset[str]:
    """Han-character bigrams of the text, leaving out those made only of function words (cached: the same
    sentences are read for many questions)."""
    grams = set()
    for run in _HAN_RUN.findall(text):
        for i in range(len(run) - 1):
            g = run[i:i + 2]
            if g in STOPWORDS or (g[0] in _WH_CHARS or g[1] in _WH_CHARS):
                continue
            grams.add(g)
    return frozenset(grams)


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
    X_asks: tuple = ()               # with several ask clauses: X with what is asked read from each clause alone
    strict_asked: tuple = ()


def _cues(texts: list[str], clauses) -> list[float]:
    """Per sentence: for each ask clause's answer cue it shows, 1 / the number of the article's sentences showing it."""
    from bot.question import CUES
    out = [0.0] * len(texts)
    for clause, _ in clauses:
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


@dataclass(frozen=True)
class _Ask:
    """What one reading of the question asks for: the whole question, or one of its ask clauses."""

    text: str
    terms: tuple[str, ...] | None        # None: every term of the question
    asked: tuple
    unit_re: re.Pattern | None
    grams: set[str]

    @classmethod
    def of(cls, text: str, terms, types: AnswerTypes) -> "_Ask":
        unit = types.asked_unit(text)
        return cls(text, terms, types.asked(text), types.unit_pattern(unit) if unit else None, bigrams(text))


# the columns that depend on what is asked: computed once for the whole question and once per ask clause
_ASK_COLUMNS = ("cov_ask", "bigram_ask", "type_share", "type_miss", "unit_match", "type_rare", "type_focus", "cue")


def _ask_columns(texts: list[str], grams: list[frozenset[str]], ask: _Ask, weights: Weights,
                 clauses: list[tuple[str, tuple[str, ...]]]) -> np.ndarray:
    """Per sentence: the _ASK_COLUMNS features for one reading of the question."""
    asked, unit_re = ask.asked, ask.unit_re
    shown_by = [[t.shown_in(s) for t in asked] for s in texts]
    per_type = [sum(col) for col in zip(*shown_by)] if asked else []
    cue = _cues(texts, clauses)
    clause_grams = [bigrams(c) for c, _ in clauses]
    out = np.zeros((len(texts), len(_ASK_COLUMNS)), dtype=np.float32)
    for i, s in enumerate(texts):
        shows = shown_by[i]
        out[i] = (
            max((weights.coverage(s, t) for _, t in clauses), default=0.0),
            max((_share(len(g & grams[i]), len(g)) for g in clause_grams), default=0.0),
            _share(sum(shows), len(asked)),
            float(bool(asked) and not any(shows)),
            float(bool(unit_re and unit_re.search(s))),
            # an asked kind of answer that few sentences of the article show points at them
            max((1.0 / per_type[j] for j, shown in enumerate(shows) if shown), default=0.0),
            _type_focus(s, asked, unit_re, ask.grams),
            cue[i],
        )
    return out


def _with_gaps(X: np.ndarray) -> np.ndarray:
    base = list(SENTENCE_FEATURES)
    cols = X[:, [base.index(name) for name in RELATIVE]]
    return np.hstack([X, cols - cols.max(axis=0)])


def build_evidence(question: Question, hits: list[Hit], weights: Weights, query: np.ndarray,
                   sentence_vectors, types: AnswerTypes | None = None) -> Evidence:
    """Compute every sentence's features for the question (no fitted weights needed).

    When the question asks several things (两个以上 ask clauses), each clause also gets its own matrix:
    the same features with what is asked read from that clause alone, so the sentence answering the
    second part is found even when the first part dominates the whole question's features.
    """
    types = types or answer_types()
    hits = hits[:CANDIDATE_ARTICLES]
    text = question.text
    whole = _Ask.of(text, None, types)
    clauses = list(question.asks)
    asks = [_Ask.of(c, t, types) for c, t in clauses] if len(clauses) > 1 else []
    q_numbers = set(_NUMBER.findall(text))
    q_grams = whole.grams
    sentences: list[str] = []
    base_rows: list[list[float]] = []
    owner: list[int] = []
    whole_cols, clause_cols = [], [[] for _ in asks]
    n_base = len(SENTENCE_FEATURES) - len(RELATIVE)
    ask_at = [SENTENCE_FEATURES.index(name) for name in _ASK_COLUMNS]
    top_score = hits[0].score if hits and hits[0].score else 1.0
    asked_places = named_places(text)
    for h_i, hit in enumerate(hits):
        found, vectors = sentence_vectors(hit.article)
        texts = [s.text for s in found]
        if not texts:
            continue
        cos = vectors @ query
        lo, hi = float(cos.min()), float(cos.max())
        spread = hi - lo
        title_grams = bigrams(hit.article.title)
        # the article is about a county or district the question does not name (镇平 for a question about 南阳)
        other_place = float(bool(named_places(hit.article.title + hit.article.unit) - asked_places))
        art_cov = weights.coverage(hit.article.text)
        n = len(texts)
        grams = [bigrams(s) for s in texts]
        whole_cols.append(_ask_columns(texts, grams, whole, weights, clauses))
        for k, ask in enumerate(asks):
            clause_cols[k].append(_ask_columns(texts, grams, ask, weights, [clauses[k]]))
        for i, s in enumerate(texts):
            numbers = set(_NUMBER.findall(s))
            row = [0.0] * n_base
            row[:4] = [float(cos[i]), (float(cos[i]) - lo) / spread if spread > 0 else 0.0, float(cos[i]) - hi,
                       weights.coverage(s)]
            row[SENTENCE_FEATURES.index("bigram")] = _share(len(q_grams & grams[i]), len(q_grams))
            row[SENTENCE_FEATURES.index("new_number")] = float(bool(numbers - q_numbers))
            row[SENTENCE_FEATURES.index("enumeration")] = float(bool(_ENUMERATION.search(s)))
            at = SENTENCE_FEATURES.index("first")
            row[at:at + 9] = [float(i == 0), float(i == n - 1), i / max(n - 1, 1), math.log(1 + len(s)),
                              float(h_i == 0), float(h_i), hit.score / top_score, art_cov,
                              _share(len(title_grams & grams[i]), len(grams[i]))]
            row[SENTENCE_FEATURES.index("other_place")] = other_place
            base_rows.append(row)
            sentences.append(s)
            owner.append(h_i)
    if base_rows:
        base = np.asarray(base_rows, dtype=np.float32)
        matrices = []
        for cols in [whole_cols] + clause_cols:
            M = base.copy()
            M[:, ask_at] = np.vstack(cols)
            matrices.append(_with_gaps(M))
        X, X_asks = matrices[0], tuple(matrices[1:])
    else:
        X, X_asks = np.zeros((0, len(SENTENCE_FEATURES)), dtype=np.float32), ()
    ev = Evidence(question, hits, sentences, np.asarray(owner, dtype=np.int64), X, asked=whole.asked,
                  strict_asked=tuple(t for t in whole.asked if t.strict), X_asks=X_asks)
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
    # every thing asked must be covered: the weakest ask clause, in the top article and in its best sentence
    clause_terms = [t for _, t in ev.question.asks if t]
    own = [s for s, o in zip(ev.sentences, ev.article_of) if o == 0]
    focus = _focus_terms(ev.question)
    return {
        "ask_min_art": min((weights.coverage(top.text, t) for t in clause_terms), default=0.0),
        "ask_min_sent": min((max((weights.coverage(s, t) for s in own), default=0.0) for t in clause_terms), default=0.0),
        "focus_art": weights.coverage(top.text, focus) if focus else 1.0,
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


_WH_WORD = re.compile(r"多少|几|哪|什么|啥|谁|多久|多长|多大|怎么|怎样|如何|咋|吗|有没有|是否|能不能")


def _focus_terms(question: Question) -> tuple[str, ...]:
    """The terms next to each ask clause's question word (最佳射手是谁 -> 最佳, 射手): what the answer is about."""
    out = []
    for clause, terms in question.asks:
        m = _WH_WORD.search(clause)
        if not m or not terms:
            continue
        before = [t for t in terms if t in clause[:m.start()]]
        after = [t for t in terms if t in clause[m.end():]]
        out += before[-2:] + after[:1]
    return tuple(dict.fromkeys(out))


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
