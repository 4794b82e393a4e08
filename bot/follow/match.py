"""Which articles a followed topic matches: the topic is asked as a question, retrieved like one, and an
article counts only when every word of the topic is covered, the topic is what the article is about (its
terms recur, or the fitted reader reads the article as answering the topic), and any place it names is there.

    TopicMatcher(answerer).match("义诊 镇平", among={article ids}) -> [Match, ...]

A shared word is not enough: the blood station union's dumpling day mentions 献血者 once in passing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from bot.answer import Answerer
from bot.results import Source
from bot.question import GENERIC, Weights
from bot.reader.features import build_evidence, named_places
from bot.wording import normalize
from corpus.dates import TimeRange
from index.keywords import query_terms
from index.store import StoredArticle
from bot.settings import FollowSettings

TOPIC_QUESTION = "有没有{topic}的消息？"   # how a topic is asked, so the reader sees a question's shape
MENTION_CAP = 4                           # occurrences of a term beyond this add nothing
COMPOUND_SHARE = 2 / 3                    # a compound term counts when its parts in the text make up this much of it
TITLE_MENTIONS = 3                        # a term in the headline counts as this many mentions
_WORD_SPLIT = re.compile(r"[\s,，、;；/]+")


@dataclass(frozen=True)
class Candidate:
    """An article retrieved for a topic, with the figures the thresholds decide on."""

    article: StoredArticle
    lead: str              # the reader's lead line for the topic
    coverage: float        # the least-covered word of the topic: IDF-weighted share of its terms in the article
    mentions: float        # IDF-weighted mentions per topic term (headline counts three times, capped)
    answerable: float      # the fitted reader's probability that the article answers the topic (0: another place)
    place_ok: bool         # every place the topic names is in the article


@dataclass(frozen=True)
class Match:
    """One article a topic matched, with its lead line."""

    article: StoredArticle
    lead: str

    def citation(self) -> str:
        """Return the one-line citation: issue date · issuing unit · article title."""
        a = self.article
        return Source(a.title, a.issue_date, a.unit, "", 0.0, a.id).citation()

    @property
    def key(self) -> str:
        """Identify the article across re-ingests of its issue (what was already sent is keyed by this)."""
        return article_key(self.article)


def article_key(article: StoredArticle) -> str:
    return f"{article.issue_key}/{article.title}"


def topic_words(topic: str) -> list[str]:
    """Split a topic into its words (spaces, commas, 、), in the bulletins' script."""
    return [w for w in _WORD_SPLIT.split(normalize(topic).strip()) if w]


class TopicMatcher:
    """Match topics against the served index with the answerer's retrieval and fitted reader."""

    def __init__(self, answerer: Answerer, settings: FollowSettings | None = None):
        self.answerer = answerer
        self.settings = settings or answerer.settings.follow

    def candidates(self, topic: str, among: set[int] | None = None, read_all: bool = True) -> list[Candidate]:
        """Return every retrieved article (only those ``among`` when given) with the figures that decide.

        The reader (the costly part) reads an article only where its verdict can matter, unless ``read_all``.
        """
        words = topic_words(topic)
        prepared = self.answerer.prepare(TOPIC_QUESTION.format(topic="".join(words)), features=False)
        if prepared is None or not words:
            return []
        hits = prepared.hits if among is None else self._within(prepared, among)
        places = named_places("".join(words))
        word_terms = [_content_terms(w, prepared.weights) for w in words]
        # a place narrows where; what the topic is about is told by its other words
        about = [t for terms, _ in word_terms for t in terms if not named_places(t)]
        s = self.settings
        out = []
        for hit in hits:
            a = hit.article
            text = f"{a.text}\n{a.unit}"
            coverage = min(_covered(text, terms, prepared.weights) for terms in word_terms)
            mentions = _mentions(a, about, prepared.weights)
            place_ok = all(p in text for p in places)
            lead, answerable = "", 0.0
            if read_all or (place_ok and coverage >= s.min_coverage):
                evidence = build_evidence(prepared.question, [hit], prepared.weights, prepared.query,
                                          self.answerer.sentence_vectors)
                reading = self.answerer.reader.read(evidence)
                lead, answerable = reading.lead, 0.0 if reading.reason else reading.answerable
            out.append(Candidate(a, lead, coverage, mentions, answerable, place_ok))
        return out

    def _within(self, prepared, among: set[int]) -> list:
        """Search again inside the new issues' dates, so older articles cannot crowd the new ones out."""
        articles = prepared.store.all_articles()
        days = sorted({articles[i].issue_date for i in among if i in articles})
        if not days:
            return []
        when = TimeRange(days[0], days[-1], days[0].isoformat())
        hits = prepared.retriever.search(prepared.question.text, when, self.answerer.today, query_vector=prepared.query)
        return [h for h in hits if h.article.id in among]

    def match(self, topic: str, among: set[int] | None = None) -> list[Match]:
        """Return the articles the topic matches, newest issue first."""
        s = self.settings
        found = [Match(c.article, c.lead) for c in self.candidates(topic, among, read_all=False)
                 if decide(c, s.min_coverage, s.min_mentions, s.min_answerable)]
        return sorted(found, key=lambda m: (-m.article.issue_date.toordinal(), m.article.position))


def decide(c: Candidate, min_coverage: float, min_mentions: float, min_answerable: float) -> bool:
    """Tell whether a retrieved article matches: places named are there, every word of the topic is covered,
    and the topic is what the article is about (its terms recur, or the reader reads it as an answer)."""
    return c.place_ok and c.coverage >= min_coverage and (c.mentions >= min_mentions or c.answerable >= min_answerable)


def _content_terms(word: str, weights: Weights) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The weighted terms of one topic word: generic ones (活动, 比赛 ...) left out unless that is all there is;
    and all of them (a compound's parts)."""
    terms = tuple(t for t in query_terms(word) if t in weights.idf)
    return tuple(t for t in terms if t not in GENERIC) or terms, terms


def _covered(text: str, word: tuple[tuple[str, ...], tuple[str, ...]], weights: Weights) -> float:
    """IDF-weighted share of a word's terms in the text; a compound (体育比赛) counts when its parts all are there."""
    terms, parts = word
    total = sum(weights.idf[t] for t in terms)
    if total <= 0:
        return 1.0
    low = text.lower()
    return sum(weights.idf[t] for t in terms if t in low or _parts_present(t, parts, low)) / total


def _parts_present(term: str, terms: tuple[str, ...], low: str) -> bool:
    """Tell whether the text holds the parts of a compound term that make up most of it (端午 of 端午节)."""
    parts = [p for p in terms if p != term and p in term and p in low]
    covered = set().union(*(range(term.index(p), term.index(p) + len(p)) for p in parts)) if parts else set()
    return len(covered) >= COMPOUND_SHARE * len(term)


def _mentions(article: StoredArticle, terms: list[str], weights: Weights) -> float:
    """IDF-weighted mean count of the terms the article holds (the headline counting three times, each capped):
    how much the article is about them. Terms it lacks are coverage's business."""
    body, title = article.body.lower(), article.title.lower()
    counts = {t: min(body.count(t) + TITLE_MENTIONS * title.count(t), MENTION_CAP) for t in terms}
    total = sum(weights.idf[t] for t in terms if counts[t])
    return sum(weights.idf[t] * counts[t] for t in terms) / total if total > 0 else 0.0


def question_topic(answerer: Answerer, question: str, cited: str = "") -> str:
    """Return the topic an answered question is about (its 关注这个话题 / 订阅这个话题): its terms the cited
    headline holds (the best retrieved article's when no citation is given), the unit that printed it left out
    (a follower wants the subject, not one hospital); without such terms, its two rarest terms."""
    prepared = answerer.prepare(question, features=False)
    if prepared is None:
        return ""
    weights = prepared.weights
    if cited:
        _, unit, title = (cited.split(" · ", 2) + ["", ""])[:3]
    elif prepared.hits:
        unit, title = prepared.hits[0].article.unit, prepared.hits[0].article.title
    else:
        unit = title = ""
    terms = [t for t in prepared.question.terms if t in weights.idf and t not in GENERIC and t not in weights.unknown
             and not any(ch.isdigit() for ch in t) and t not in unit]
    chosen = [t for t in terms if title and t in title] or sorted(terms, key=lambda t: -weights.idf[t])[:2]
    chosen = [t for t in chosen if not any(t != other and t in other for other in chosen)]
    return " ".join(chosen[:3])
