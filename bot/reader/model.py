"""The fitted reader: which sentences answer, whether the evidence answers at all, and the lead line.

Two logistic regressions fitted by `bulletin-bot fit` (bot/reader/fit.py) and stored as plain numbers
in model.json: one scores each (question, sentence) pair, one scores the whole reading (is the
answer printed here?) with a threshold chosen by cross-validation. Applying them is a few numpy dot
products, so nothing beyond numpy is needed at answer time.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from bot.reader.features import QUESTION_FEATURES, SENTENCE_FEATURES, Evidence, bigrams, reading_features
from errors import BulletinBotError

LEAD_CHARS = 80               # the lead line: the answering sentence, or its clauses holding the answer
MAX_SUPPORT = 2               # supporting quotes after the lead line
OTHER_ARTICLE_SHARE = 0.85    # a supporting quote from a second article needs this share of the lead article's coverage
_CLAUSE = re.compile(r"[^，,；;：:]+[，,；;：:]?")


@dataclass(frozen=True)
class Logistic:
    """A standardised logistic regression: p = sigmoid(((x - mean) / scale) . coef + intercept)."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def __call__(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros(0, dtype=np.float32)
        z = ((X - self.mean) / self.scale) @ self.coef + self.intercept
        return (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)

    def to_json(self) -> dict:
        return {"features": list(self.features), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": float(self.intercept)}

    @classmethod
    def from_json(cls, data: dict, expected: tuple[str, ...]) -> "Logistic":
        if tuple(data["features"]) != expected:
            raise BulletinBotError("the reader model was fitted on other features; run `bulletin-bot fit`")
        arr = lambda k: np.asarray(data[k], dtype=np.float32)          # noqa: E731
        return cls(expected, arr("mean"), arr("scale"), arr("coef"), float(data["intercept"]))


@dataclass(frozen=True)
class Reading:
    """What the reader concluded about one question's evidence."""

    p: np.ndarray                 # per sentence: probability it holds a fact asked for
    chosen: tuple[int, ...]       # lead sentence first, then supporting ones
    lead: str                     # the lead line (verbatim: a sentence or a run of its clauses)
    answerable: float             # probability the evidence answers the question
    abstain: bool
    reason: str = ""              # why it abstains when a class rule decided it (strict attribute missing ...)


@dataclass(frozen=True)
class ReaderModel:
    sentence: Logistic
    answerable: Logistic
    threshold: float              # abstain below this answerability
    support_min: float            # a supporting sentence needs at least this probability ...
    support_share: float          # ... and this share of the lead's
    meta: dict

    @classmethod
    def load(cls, path: Path | None = None) -> "ReaderModel":
        try:
            raw = (Path(path).read_text(encoding="utf-8") if path else
                   resources.files("bot.reader").joinpath("model.json").read_text(encoding="utf-8"))
            data = json.loads(raw)
            return cls(Logistic.from_json(data["sentence"], SENTENCE_FEATURES),
                       Logistic.from_json(data["answerable"], QUESTION_FEATURES),
                       float(data["threshold"]), float(data["support_min"]), float(data["support_share"]),
                       data.get("meta", {}))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BulletinBotError(f"the reader model cannot be read ({exc}); run `bulletin-bot fit`") from None

    def to_json(self) -> dict:
        return {"sentence": self.sentence.to_json(), "answerable": self.answerable.to_json(),
                "threshold": self.threshold, "support_min": self.support_min,
                "support_share": self.support_share, "meta": self.meta}

    def read(self, ev: Evidence) -> Reading:
        """Score the sentences, pick the lead and its support, and decide whether to answer."""
        p = self.sentence(ev.X)
        if len(p) == 0:
            return Reading(p, (), "", 0.0, True)
        chosen = choose(p, ev.article_of, self.support_min, self.support_share, article_cover(ev))
        lead = lead_line(ev.sentences[chosen[0]], ev)
        features = reading_features(ev, p, list(chosen))
        a = float(self.answerable(features[None, :])[0])
        # class rules, read off the same features: an asked phone/price/... not printed, another county or year
        reason = next((rule for rule in ("strict_missing", "place_mismatch", "year_mismatch")
                       if features[QUESTION_FEATURES.index(rule)]), "")
        return Reading(p, chosen, lead, a, bool(reason) or a < self.threshold, reason)


def choose(p: np.ndarray, article_of: np.ndarray, support_min: float, support_share: float,
           article_cover: np.ndarray | None = None) -> tuple[int, ...]:
    """Return the lead sentence and up to MAX_SUPPORT supporting ones, best first.

    A supporting sentence from another article than the lead's must come from an article that covers
    the question nearly as well (OTHER_ARTICLE_SHARE of the lead article's term coverage) and score
    at least half the lead's probability: a blood drive of another hospital does not support this one's.
    """
    order = [int(i) for i in np.argsort(-p, kind="stable")]
    lead = order[0]
    floor = max(support_min, support_share * float(p[lead]))
    def fits(i: int) -> bool:
        if p[i] < floor:
            return False
        if article_of[i] == article_of[lead] or article_cover is None:
            return True
        return p[i] >= 0.5 * p[lead] and article_cover[i] >= OTHER_ARTICLE_SHARE * article_cover[lead]
    support = [i for i in order[1:] if fits(i)][:MAX_SUPPORT]
    return (lead, *support)


def article_cover(ev: Evidence) -> np.ndarray:
    """Per sentence: how much of the question its article covers (IDF-weighted terms)."""
    return ev.X[:, SENTENCE_FEATURES.index("art_cov")] if len(ev.X) else np.zeros(0)


def lead_line(sentence: str, ev: Evidence) -> str:
    """Return the sentence, or when it is long the run of its clauses that best answers (verbatim)."""
    sentence = sentence.strip()
    if len(sentence) <= LEAD_CHARS:
        return sentence
    clauses = _CLAUSE.findall(sentence)
    if len(clauses) <= 1:
        return sentence[:LEAD_CHARS].rstrip("，,；;：:") + "……"
    grams = bigrams(ev.question.text)
    scores = [_clause_score(c, ev, grams) for c in clauses]
    best = max(range(len(clauses)), key=lambda i: (scores[i], -i))
    lo = hi = best
    length = len(clauses[best])
    while True:   # grow towards the better neighbour while the run stays short
        options = [j for j in (lo - 1, hi + 1) if 0 <= j < len(clauses) and length + len(clauses[j]) <= LEAD_CHARS]
        if not options:
            break
        j = max(options, key=lambda j: (scores[j], -abs(j - best), j < best))
        lo, hi = min(lo, j), max(hi, j)
        length += len(clauses[j])
    text = "".join(clauses[lo:hi + 1]).rstrip("，,；;：:")
    return ("……" if lo > 0 else "") + text + ("……" if hi < len(clauses) - 1 else "")


def _clause_score(clause: str, ev: Evidence, grams: set[str]) -> float:
    """How much a clause looks like the answer: the kinds of answer asked for it shows, question bigrams it holds."""
    shown = sum(t.shown_in(clause) for t in ev.asked)
    overlap = len(grams & bigrams(clause)) / len(grams) if grams else 0.0
    return 2.0 * shown + overlap


@lru_cache(maxsize=1)
def bundled_model() -> ReaderModel:
    return ReaderModel.load()
