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
from bot.reader.listing import LISTING_FEATURES
from corpus.errors import BulletinBotError

LEAD_CHARS = 80               # the lead line: the answering sentence, or its clauses holding the answer
MAX_SUPPORT = 3               # supporting quotes after the lead line, while they fit in ANSWER_CHARS
ANSWER_CHARS = 200            # what a resident reads: the quotes, their marks and citation numbers
MIN_SUPPORT_CHARS = 16        # a supporting quote trimmed shorter than this is left out
_LINE_MARKS = 5               # “…”〔n〕 around each quote
SUPPORT_CHARS = 80            # each supporting quote: its sentence, or the clauses that answer, up to this length
LATIN_SHARE = 0.3             # the coverage floor leaves out questions mostly in Latin letters (English)
DIVERSITY = 1.0               # weight of the probability of answering an ask clause the chosen sentences do not yet answer
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
    lines: tuple[str, ...] = ()   # the lead line, then each supporting quote (verbatim, trimmed the same way)


@dataclass(frozen=True)
class ReaderModel:
    sentence: Logistic
    answerable: Logistic
    threshold: float              # abstain below this answerability
    meta: dict
    coverage_floor: float = 0.0   # abstain when the top article holds less of the question's terms (fitted)
    listing: Logistic | None = None   # a listing question's candidate article is listed at or above ...
    listing_threshold: float = 0.5    # ... this probability (bot/reader/listing.py)

    @classmethod
    def load(cls, path: Path | None = None) -> "ReaderModel":
        try:
            raw = (Path(path).read_text(encoding="utf-8") if path else
                   resources.files("bot.reader").joinpath("model.json").read_text(encoding="utf-8"))
            data = json.loads(raw)
            return cls(Logistic.from_json(data["sentence"], SENTENCE_FEATURES),
                       Logistic.from_json(data["answerable"], QUESTION_FEATURES),
                       float(data["threshold"]), data.get("meta", {}), float(data.get("coverage_floor", 0.0)),
                       Logistic.from_json(data["listing"], LISTING_FEATURES) if "listing" in data else None,
                       float(data.get("listing_threshold", 0.5)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BulletinBotError(f"the reader model cannot be read ({exc}); run `bulletin-bot fit`") from None

    def to_json(self) -> dict:
        return {"sentence": self.sentence.to_json(), "answerable": self.answerable.to_json(),
                "threshold": self.threshold, "coverage_floor": self.coverage_floor, "meta": self.meta} | (
                {"listing": self.listing.to_json(), "listing_threshold": self.listing_threshold} if self.listing else {})

    def read(self, ev: Evidence) -> Reading:
        """Score the sentences, pick the lead and its support, and decide whether to answer."""
        p, by_ask = sentence_scores(self.sentence, ev)
        if len(p) == 0:
            return Reading(p, (), "", 0.0, True)
        chosen = choose(p, ev.article_of, article_cover(ev), by_ask)
        lines, chosen = fit_lines(ev, chosen)
        if any(t.name == "enumeration" for t in ev.asked):
            lines, chosen = _with_series(lines, chosen, ev)
        lead = lines[0]
        features = reading_features(ev, p, list(chosen))
        a = float(self.answerable(features[None, :])[0])
        # class rules, read off the same features: an asked phone/price/... not printed, another county or year
        reason = next((rule for rule in ("strict_missing", "place_mismatch", "year_mismatch")
                       if features[QUESTION_FEATURES.index(rule)]), "")
        if not reason and below_floor(features, self.coverage_floor):
            reason = "coverage"
        return Reading(p, chosen, lead, a, bool(reason) or a < self.threshold, reason, lines)


def sentence_scores(sentence: Logistic, ev: Evidence) -> tuple[np.ndarray, np.ndarray | None]:
    """Per sentence: the probability it holds a fact asked for, and with several ask clauses the same
    read from each clause alone (sentences x clauses); a sentence answering one of them answers."""
    p = sentence(ev.X)
    if len(p) == 0 or not ev.X_asks:
        return p, None
    by_ask = np.stack([sentence(X) for X in ev.X_asks], axis=1)
    return np.maximum(p, by_ask.max(axis=1)), by_ask


# 一是…二是…, （一）…（二）…: an item starts a sentence or follows a colon or semicolon; it runs to its clause end
_ITEM = re.compile(r"(?:^|(?<=[：:；;。]))\s*((?:[一二三四五六七八九十]+是|（[一二三四五六七八九十]+）)[^，,；;。：:]{1,24})")
_CN_DIGITS = "一二三四五六七八九十"


def ordinal_series(sentences: list[str]) -> list[tuple[int, str]]:
    """Return (sentence index, item) for an article's enumerated points (一是…二是…), in order, when they run 一, 二, …"""
    items = []
    for i, sentence in enumerate(sentences):
        for m in _ITEM.finditer(sentence.strip()):
            items.append((i, m.group(1)))
    numbered = [(i, item) for i, item in items if item.lstrip("（")[0] in _CN_DIGITS]
    run: list[tuple[int, str]] = []
    for i, item in numbered:                # the first run that counts up from 一
        n = _CN_DIGITS.index(item.lstrip("（")[0]) + 1
        if n == len(run) + 1:
            run.append((i, item))
        elif n == 1:
            if len(run) >= 2:
                break
            run = [(i, item)]
    return run if len(run) >= 2 else []


def _with_series(lines: tuple[str, ...], chosen: tuple[int, ...], ev: Evidence) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """An enumeration asked for, and a chosen sentence is one of the article's points (or the one announcing
    them): that line becomes the points' heads, verbatim (一是深化体制机制改革……二是加强人才队伍建设……).

    When only an enumeration is asked (哪几项工作), a sentence detailing one point also stands for the points,
    and the points go first; when something more specific is asked too (哪几天 is a date), details stay.
    """
    only = all(t.name == "enumeration" for t in ev.asked)
    for n, i in enumerate(chosen):
        own = np.flatnonzero(ev.article_of == ev.article_of[i])
        series = ordinal_series([ev.sentences[j] for j in own])
        if not series:
            continue
        members = {int(own[k]) for k, _ in series}
        first, last = int(own[series[0][0]]), int(own[series[-1][0]])
        if i in members or i == first - 1 or (only and first < i < last):
            opening = ev.sentences[first].strip()
            intro = opening[:opening.find(series[0][1])].rstrip("：:；; ")
            digest = (lead_line(intro, ev, SUPPORT_CHARS // 2) + "：" if len(intro) > 4 else "") + \
                "……".join(item for _, item in series)
            # the other chosen points are in it now; an enumeration alone asked: the points lead
            rest = [m for m in range(len(lines)) if m != n and chosen[m] not in members]
            order = [n] + rest if only else sorted([n] + rest)
            return (tuple(digest if m == n else lines[m] for m in order), tuple(chosen[m] for m in order))
    return lines, chosen


def fit_lines(ev: Evidence, chosen: tuple[int, ...], budget: int = ANSWER_CHARS) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Trim the chosen sentences to lines that fit in ``budget`` characters together.

    The lead keeps up to LEAD_CHARS; the supporting quotes share what is left: a short one is kept whole
    and the longer ones are trimmed to one common length (at most SUPPORT_CHARS). When that length would
    be under MIN_SUPPORT_CHARS, the last supporting quote is left out.
    """
    if not chosen:
        return (), ()
    lead = lead_line(ev.sentences[chosen[0]], ev, LEAD_CHARS)
    support = list(chosen[1:])
    while support:
        room = budget - len(lead) - _LINE_MARKS * (len(support) + 1)
        cap = _common_cap([len(ev.sentences[i].strip()) for i in support], room, SUPPORT_CHARS)
        if cap >= MIN_SUPPORT_CHARS:
            lines = [lead] + [lead_line(ev.sentences[i], ev, cap) for i in support]
            return tuple(lines), (chosen[0], *support)
        support.pop()
    return (lead,), (chosen[0],)


def _common_cap(lengths: list[int], room: int, most: int) -> int:
    """The largest cap (at most ``most``) with sum(min(length, cap)) within ``room``."""
    cap = most
    while cap > 0 and sum(min(n, cap) for n in lengths) > room:
        cap -= 1
    return cap


def below_floor(features: np.ndarray, floor: float) -> bool:
    """A question in Chinese whose terms the top article hardly holds is about something else (护照, 房价).

    English questions are left to the fitted score: their terms are not printed in the bulletins at all.
    """
    at = QUESTION_FEATURES.index
    return bool(features[at("latin")] < LATIN_SHARE and features[at("art_cov")] < floor)


def choose(p: np.ndarray, article_of: np.ndarray, article_cover: np.ndarray | None = None, ask_cover: np.ndarray | None = None,
           diversity: float = DIVERSITY) -> tuple[int, ...]:
    """Return the lead sentence and up to MAX_SUPPORT supporting ones, best first.

    Every sentence may support (measured: probability floors lost facts that fit_lines would have kept).
    A supporting sentence from another article than the lead's must come from an article that covers
    the question nearly as well (OTHER_ARTICLE_SHARE of the lead article's term coverage) and score
    at least half the lead's probability: a blood drive of another hospital does not support this one's.
    When the question asks several things (ask clauses), a sentence gains ``diversity`` times how much it
    raises the probability of answering each clause over the chosen ones (``ask_cover``: sentences x
    clauses, each clause's probabilities read from that clause alone, or any per-clause cover in [0, 1]).
    """
    order = [int(i) for i in np.argsort(-p, kind="stable")]
    lead = order[0]

    def fits(i: int) -> bool:
        if article_of[i] == article_of[lead] or article_cover is None:
            return True
        return p[i] >= 0.5 * p[lead] and article_cover[i] >= OTHER_ARTICLE_SHARE * article_cover[lead]

    candidates = [i for i in order[1:] if fits(i)]
    chosen = [lead]
    several = ask_cover is not None and ask_cover.ndim == 2 and ask_cover.shape[1] > 1 and diversity > 0
    covered = ask_cover[lead].copy() if several else None
    while candidates and len(chosen) <= MAX_SUPPORT:
        if several:
            best = max(candidates, key=lambda i: (float(p[i]) + diversity * float(np.maximum(ask_cover[i] - covered, 0).sum()),
                                                  -candidates.index(i)))
            covered = np.maximum(covered, ask_cover[best])
        else:
            best = candidates[0]
        chosen.append(best)
        candidates.remove(best)
    return tuple(chosen)


def article_cover(ev: Evidence) -> np.ndarray:
    """Per sentence: how much of the question its article covers (IDF-weighted terms)."""
    return ev.X[:, SENTENCE_FEATURES.index("art_cov")] if len(ev.X) else np.zeros(0)


def lead_line(sentence: str, ev: Evidence, limit: int = LEAD_CHARS) -> str:
    """Return the sentence, or when it is longer than ``limit`` the clauses that best answer, verbatim."""
    return trim_clauses(sentence, ev.question.text, ev.asked, limit)


def trim_clauses(sentence: str, question: str, asked: tuple, limit: int) -> str:
    """Return the sentence, or when it is longer than ``limit`` the clauses that best answer the question.

    Clauses are scored by the kinds of answer asked that they show and the question bigrams they
    hold; the best are kept (in their printed order) while they fit, and "……" marks what was left out.
    """
    sentence = sentence.strip()
    if len(sentence) <= limit:
        return sentence
    clauses = _CLAUSE.findall(sentence)
    if len(clauses) <= 1:
        return sentence[:limit].rstrip("，,；;：:") + "……"
    grams = bigrams(question)
    scores = [_clause_score(c, asked, grams) for c in clauses]
    keep: set[int] = set()
    length = 0
    while True:   # the best clause that still fits; among equals the one nearest those kept
        fits = [i for i in range(len(clauses)) if i not in keep and length + len(clauses[i]) <= limit]
        if not fits:
            break
        i = max(fits, key=lambda i: (scores[i], -min((abs(i - k) for k in keep), default=i), -i))
        keep.add(i)
        length += len(clauses[i])
    if not keep:                       # even the best clause is too long: its start
        best = max(range(len(clauses)), key=lambda i: (scores[i], -i))
        return ("……" if best > 0 else "") + clauses[best][:limit].rstrip("，,；;：:") + "……"
    out, previous = [], -1
    for i in sorted(keep):
        if i != previous + 1:
            if out:
                out[-1] = out[-1].rstrip("，,；;：:")
            out.append("……")
        out.append(clauses[i])
        previous = i
    text = "".join(out).rstrip("，,；;：:")
    return text + ("……" if previous < len(clauses) - 1 else "")


INFO_WEIGHT = 1.0           # no kind of answer recognised in the question: a clause printing a number or a list (A、B、C) is likelier the fact
_INFO = re.compile(r"\d|(?:[^、，。；]{1,16}、){2,}")


def _clause_score(clause: str, asked: tuple, grams: set[str]) -> float:
    """How much a clause looks like the answer: the kinds of answer asked for it shows, question bigrams it holds."""
    shown = sum(t.shown_in(clause) for t in asked)
    overlap = len(grams & bigrams(clause)) / len(grams) if grams else 0.0
    return 2.0 * shown + overlap + (INFO_WEIGHT * bool(_INFO.search(clause)) if not asked else 0.0)


@lru_cache(maxsize=1)
def bundled_model() -> ReaderModel:
    return ReaderModel.load()
