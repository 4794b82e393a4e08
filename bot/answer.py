"""Question -> Answer: retrieve articles, check they hold the answer, quote and cite them."""
from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field, replace

from bot import replies
from bot.question import GENERIC, Question, Weights, expand_aliases, missing_answer_type, ordinal_mismatch
from bot.quoting import SentencePicker
from bot.wording import normalize
from corpus.dates import TimeRange
from errors import BulletinBotError
from index.build import ensure_index, index_identity
from index.embedding import Embedder
from index.generations import Generations
from index.retrieval import Hit, Retriever
from index.store import IndexStore, StoredArticle
from index.vectors import SentenceVectors, VectorCache
from settings import Settings, reference_day

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 500          # longer messages are cut before retrieval
EMBED_CHARS = 160                 # ... and embedded only this far: encoder time grows with length squared
PASSAGES_PER_ARTICLE = 2          # evidence passages shown per article in `sources`
SECOND_ARTICLE_SHARE = 0.85       # quote a second article only if it covers the question nearly as well


@dataclass(frozen=True)
class Source:
    """One cited passage: which issue, which unit, which article, and the text shown as evidence."""

    title: str
    date: dt.date          # issue date
    unit: str
    text: str
    score: float
    article_id: int = 0

    def citation(self) -> str:
        """Return the one-line citation: issue date · issuing unit · article title."""
        return f"{self.date.isoformat()} · {self.unit or '（未署名）'} · {self.title}"

    def to_json(self) -> dict:
        return {"title": self.title, "date": self.date.isoformat(), "unit": self.unit,
                "text": self.text, "score": round(float(self.score), 6), "article_id": self.article_id}


@dataclass(frozen=True)
class Answer:
    """What the bot says: text (citations included), whether it abstained, and the sources best first."""

    text: str
    abstained: bool
    sources: tuple[Source, ...] = field(default_factory=tuple)
    cited: tuple[Source, ...] = field(default_factory=tuple)   # the articles the text quotes
    nearest: Source | None = None                               # an abstention's closest article

    def to_json(self, question: str) -> dict:
        return {"question": question, "answer": self.text, "abstained": self.abstained,
                "sources": [s.to_json() for s in self.sources],
                "cited": [s.to_json() for s in self.cited],
                "nearest": self.nearest.to_json() if self.nearest is not None else None}


class Answerer:
    """Answer questions from the served index generation, reopening it when a writer swaps in a new one."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, today: dt.date | None = None,
                 progress: bool = False):
        self.settings = settings
        self.embedder = embedder or Embedder(settings.embedding)
        self.today_override = today
        self._lock = threading.Lock()
        self._generations = Generations(settings.data_dir)
        ensure_index(settings, self.embedder, progress)
        self._served: tuple[object, IndexStore, Retriever] | None = None
        self._sentences = SentenceVectors(VectorCache(settings.data_dir / "vectors.db"), self.embedder)
        self._generator = None
        if settings.generation.enabled:
            from bot.generate import Generator
            self._generator = Generator(settings.generation)
        self.refresh()

    @property
    def today(self) -> dt.date:
        return self.today_override or reference_day(self.settings)

    def refresh(self) -> tuple[IndexStore, Retriever]:
        """Return the served store and retriever, opening the new generation if the pointer moved.

        A new generation that fails to open (damaged, built differently) is logged and the one
        already served stays served; with none served yet, the error goes to the caller.
        """
        current = self._generations.current()
        served = self._served
        if served is not None and served[0] == current:
            return served[1], served[2]
        # One thread opens the new generation (checksums take a while on a big index); the others
        # keep answering from the one served until it is ready.
        if not self._lock.acquire(blocking=served is None):
            return served[1], served[2]
        try:
            if self._served is None or self._served[0] != current:
                try:
                    store = IndexStore(current, index_identity(self.settings, self.embedder))
                except BulletinBotError as exc:
                    if self._served is None:
                        raise
                    log.error("keeping index %s: %s", self._served[0].name, exc.user_message)
                    self._served = (current, self._served[1], self._served[2])
                    return self._served[1], self._served[2]
                self._served = (current, store, Retriever(store, self.embedder, self.settings.retrieval))
                log.info("serving index %s", current.name)
            return self._served[1], self._served[2]
        finally:
            self._lock.release()

    @property
    def store(self) -> IndexStore:
        return self.refresh()[0]

    def answer(self, text: str, k: int | None = None) -> Answer:
        """Answer one question: retrieve articles, check they hold the answer, quote and cite them."""
        text = normalize((text or "").strip()[:MAX_QUESTION_CHARS])
        store, retriever = self.refresh()
        # 1. read the question: short names expanded, time range, listing or not, terms and their weights
        question = Question.read(expand_aliases(text), self.today, retriever.newest_issue())
        if not question.terms and question.when is None:
            return Answer(replies.EMPTY_QUESTION, abstained=True)
        weights = Weights(store, question.terms)
        query = self.embedder.encode_query(question.text[:EMBED_CHARS])
        # 2. retrieve articles: keyword and vector ranks fused, narrowed by the time range
        hits = retriever.search(question.text, question.when, self.today, query_vector=query)
        hits = _rerank(hits, weights, self.settings.retrieval.coverage_weight)
        # 3. compose a list, a quote or an abstention
        pick = SentencePicker(self._sentences, question, query, weights)
        if question.listing:
            answer = self._listing(question, hits, weights, pick, store, retriever)
        else:
            answer = self._quote(question, hits, weights, pick)
        answer = replace(answer, sources=_passages(hits, k or self.settings.retrieval.top_k))
        # 4. optionally let an LLM rephrase it (citations kept, numbers checked)
        if self._generator is not None and not answer.abstained:
            answer = self._generator.rewrite(text, answer)
        return answer

    def _quote(self, question: Question, hits: list[Hit], weights: Weights, pick: SentencePicker) -> Answer:
        if not hits:
            return _abstain(question.when, None)
        best = hits[0]
        coverage = weights.coverage(best.article.text)
        floor = self.settings.answer.min_coverage_agreed if best.agreed else self.settings.answer.min_coverage
        if (ordinal := ordinal_mismatch(question.text, best.article)) is not None:
            return _abstain(question.when, best, replies.ONLY_OTHER_ORDINAL.format(ordinal=ordinal))
        if coverage < floor or missing_answer_type(question.text, best.article):
            log.debug("abstain (coverage %.2f, floor %.2f): %s", coverage, floor, question.text)
            return _abstain(question.when, best)
        chosen = [best] + [h for h in hits[1:self.settings.answer.max_articles]
                           if weights.coverage(h.article.text) >= SECOND_ARTICLE_SHARE * coverage]
        blocks = [replies.QUOTE.format(n=n, date=h.article.issue_date.isoformat(), title=h.article.title,
                                       quote="……".join(pick(h.article, self.settings.answer.max_sentences)))
                  for n, h in enumerate(chosen, start=1)]
        cited = [_source(h) for h in chosen]
        return Answer(_with_citations("\n".join(blocks), cited), False, (), tuple(cited))

    def _listing(self, question: Question, hits: list[Hit], weights: Weights, pick: SentencePicker,
                 store: IndexStore, retriever: Retriever) -> Answer:
        articles = self._matching_articles(question, hits, weights, store, retriever)
        if not articles:
            return _abstain(question.when, hits[0] if hits else None)
        articles.sort(key=lambda a: (a.issue_date, a.position))
        by_id = {h.article.id: h for h in hits}
        lines = [replies.LIST_HEADER.format(n=len(articles))]
        for a in articles:
            day = (a.event_dates[0] if a.event_dates else a.issue_date).isoformat()
            lines.append(replies.LIST_LINE.format(date=day, title=a.title, unit=a.unit or "—", quote=pick(a, 1)[0]))
        cited = [_source(by_id[a.id]) if a.id in by_id else Source(a.title, a.issue_date, a.unit, a.text, 0.0, a.id)
                 for a in articles]
        return Answer(_with_citations("\n".join(lines), cited), False, (), tuple(cited))

    def _matching_articles(self, question: Question, hits: list[Hit], weights: Weights,
                           store: IndexStore, retriever: Retriever) -> list[StoredArticle]:
        """Return every article a listing question asks for, not cut at top-k."""
        when = question.when
        if when is not None and not when.vague and not any(t not in GENERIC for t in weights.idf):
            # "7月12日那天有哪些活动？": every article of those dates, retrieved or not
            articles = store.all_articles()
            return [articles[i] for i in retriever.allowed(when)]
        scored = [(weights.coverage(h.article.text, skip=GENERIC), h.article) for h in hits]
        top = max((s for s, _ in scored), default=0.0)
        floor = max(self.settings.answer.min_coverage, 0.6 * top)
        return [a for s, a in scored if s >= floor]


def _rerank(hits: list[Hit], weights: Weights, coverage_weight: float) -> list[Hit]:
    """Order hits by fused rank score plus how much of the question each article covers.

    Rank fusion alone lets a topically close article outvote the one holding the question's rare
    words (萤火虫夜跑); coverage weighs those words by their rarity.
    """
    if not hits:
        return hits
    top = hits[0].score or 1.0
    rescored = [replace(h, score=h.score / top + coverage_weight * weights.coverage(h.article.text)) for h in hits]
    return sorted(rescored, key=lambda h: (-h.score, h.article.id))


def _passages(hits: list[Hit], k: int) -> tuple[Source, ...]:
    """Return up to k evidence passages, best article first, a few from each article."""
    out: list[Source] = []
    for hit in hits:
        a = hit.article
        out += [Source(a.title, a.issue_date, a.unit, text, hit.score, a.id)
                for text in (hit.text, *hit.more)[:PASSAGES_PER_ARTICLE]]
        if len(out) >= k:
            break
    return tuple(out[:k])


def _source(hit: Hit) -> Source:
    a = hit.article
    return Source(a.title, a.issue_date, a.unit, hit.text, hit.score, a.id)


def _with_citations(body: str, cited: list[Source]) -> str:
    lines = [f"〔{n}〕{s.citation()}" for n, s in enumerate(cited, start=1)]
    return body + "\n" + replies.SOURCES_HEADER + "\n" + "\n".join(lines)


def _abstain(when: TimeRange | None, nearest: Hit | None, reason: str = "") -> Answer:
    specific = when is not None and not when.vague
    text = (replies.NOT_FOUND_IN_RANGE.format(label=when.label) if specific else replies.NOT_FOUND) + reason
    if when is not None and when.after_newest is not None:
        text += replies.NEWEST_ISSUE.format(date=when.after_newest.isoformat())
    if nearest is not None:
        a = nearest.article
        text += "\n" + replies.NEAREST.format(date=a.issue_date.isoformat(), title=a.title)
    return Answer(text, True, (), (), _source(nearest) if nearest is not None else None)
