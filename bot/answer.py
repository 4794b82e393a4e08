"""Question -> Answer: retrieve articles, check they hold the answer, quote and cite them."""
from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, replace

from bot import replies
from bot.results import Answer, Source
from bot.question import GENERIC, Question, Weights, expand_aliases, respell, missing_answer_type, ordinal_mismatch
from bot.quoting import SentencePicker
from bot.reader.features import Evidence, build_evidence, named_places
from bot.reader.listing import candidates as listing_candidates
from bot.reader.model import ReaderModel, Reading, bundled_model, trim_clauses
from bot.reader.types import answer_types
from bot.wording import dated_only, names_only_a_time, normalize
from corpus.dates import TimeRange
from corpus.errors import BulletinBotError
from index.build import index_identity
from index.embedding import Embedder, resolve_model
from index.generations import Generations
from index.retrieval import Hit, Retriever
from index.store import IndexStore, StoredArticle
from index.vectors import SentenceVectors, VectorCache
from bot.settings import Settings, reference_day
from index.paths import VECTORS_DB

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 500          # longer messages are cut before retrieval
EMBED_CHARS = 160                 # ... and embedded only this far: encoder time grows with length squared
LIST_QUOTE_CHARS = 20            # a listing line's quote: its sentence's answering clauses up to this length
PASSAGES_PER_ARTICLE = 2          # evidence passages shown per article in `sources`
SECOND_ARTICLE_SHARE = 0.85       # rules reader: quote a second article only if it covers the question nearly as well


@dataclass(frozen=True)
class Prepared:
    """A question read and its evidence gathered, before any fitted weights are applied."""

    text: str
    question: Question
    weights: Weights
    query: object
    hits: list[Hit]
    evidence: Evidence | None
    store: IndexStore
    retriever: Retriever


class Answerer:
    """Answer questions from the served index generation, reopening it when a writer swaps in a new one."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, today: dt.date | None = None,
                 reader: ReaderModel | None = None):
        """Open the served generation (the engine builds one first when there is none: ``Engine.start``)."""
        self.settings = settings
        self._reader = reader
        self.embedder = embedder or Embedder(resolve_model(settings.index))
        self.today_override = today
        self._lock = threading.Lock()
        self._generations = Generations(settings.data_dir)
        self._served: tuple[object, IndexStore, Retriever] | None = None
        self.sentence_vectors = SentenceVectors(VectorCache(settings.data_dir / VECTORS_DB), self.embedder)
        self._generator = None
        if settings.generation.enabled:
            from bot.generate import Generator
            self._generator = Generator(settings.generation)
        self.refresh()

    @property
    def reader(self) -> ReaderModel:
        """The fitted reader (bot/reader/model.json unless one was given)."""
        if self._reader is None:
            self._reader = bundled_model()
        return self._reader

    @reader.setter
    def reader(self, model: ReaderModel) -> None:
        self._reader = model

    @property
    def today(self) -> dt.date:
        return self.today_override or reference_day(self.settings)

    def refresh(self, wait: bool = False) -> tuple[IndexStore, Retriever]:
        """Return the served store and retriever, opening the new generation if the pointer moved.

        While another thread opens it, a question keeps the generation served; with ``wait`` (an
        admin's ingest that must not return before its issue is served), the call waits for it.
        A new generation that fails to open (damaged, built differently) is logged and the one
        already served stays served; with none served yet, the error goes to the caller.
        """
        current = self._generations.current()
        if current is None:
            raise BulletinBotError(f"还没有索引：{self.settings.data_dir}（no index yet: run bulletin-bot reindex）")
        served = self._served
        if served is not None and served[0] == current:
            return served[1], served[2]
        # One thread opens the new generation (checksums take a while on a big index); the others
        # keep answering from the one served until it is ready.
        if not self._lock.acquire(blocking=wait or served is None):
            return served[1], served[2]
        try:
            if self._served is None or self._served[0] != current:
                try:
                    store = IndexStore(current, index_identity(self.settings.index, self.embedder))
                except BulletinBotError as exc:
                    if self._served is None:
                        raise
                    log.error("keeping index %s: %s", self._served[0].name, exc.user_message)
                    self._served = (current, self._served[1], self._served[2])
                    return self._served[1], self._served[2]
                store.sounds()          # respelling's map, built here: off the question path when the watcher opens it
                self._served = (current, store, Retriever(store, self.embedder, self.settings.retrieval))
                log.info("serving index %s", current.name)
            return self._served[1], self._served[2]
        finally:
            self._lock.release()

    @property
    def serving(self) -> str | None:
        """The name of the index generation served, None before the first question opened one."""
        served = self._served
        return None if served is None else served[0].name

    @property
    def store(self) -> IndexStore:
        return self.refresh()[0]

    def prepare(self, text: str, features: bool = True) -> "Prepared | None":
        """Read the question and gather its evidence (retrieval, and the sentence features the fitted reader
        scores unless ``features`` is false); None if it is empty."""
        text = normalize((text or "").strip()[:MAX_QUESTION_CHARS])
        store, retriever = self.refresh()
        # 1. read the question: short names expanded, time range, listing or not, terms and their weights
        question = Question.read(respell(expand_aliases(text), store), self.today, retriever.newest_issue())
        if not question.text:
            return None
        weights = Weights(store, question.terms)
        query = self.embedder.encode_query(question.text[:EMBED_CHARS])
        # 2. retrieve articles: keyword and vector ranks fused, narrowed by the time range
        hits = retriever.search(question.text, question.when, self.today, query_vector=query)
        hits = _rerank(hits, weights, self.settings.retrieval.coverage_weight)
        # 3. every sentence of the best articles, with the features the reader scores
        evidence = build_evidence(question, hits, weights, query, self.sentence_vectors) if features else None
        return Prepared(text, question, weights, query, hits, evidence, store, retriever)

    def answer(self, text: str, k: int | None = None) -> Answer:
        """Answer one question: retrieve articles, check they hold the answer, quote and cite them."""
        prepared = self.prepare(text, features=self.settings.answer.reader == "fitted")
        if prepared is None or (not prepared.question.terms and prepared.question.when is None
                                and not prepared.hits):
            return Answer(replies.EMPTY_QUESTION, abstained=True)
        question, hits = prepared.question, prepared.hits
        # 4. compose a list, a quote or an abstention
        pick = SentencePicker(self.sentence_vectors, question, prepared.query, prepared.weights)
        answer = None
        if question.listing or dated_only(question, prepared.store, prepared.weights.unknown):
            # a list of events ("7月9号有啥动静" asks for that day's); when only one article matches, the
            # enumeration asked for is inside it and the quote path answers
            answer = self._listing(question, hits, prepared.weights, pick, prepared.store, prepared.retriever)
        if answer is None and self.settings.answer.reader == "fitted":
            answer = self._quote(question, hits, self.reader.read(prepared.evidence), prepared.evidence)
        elif answer is None:
            answer = self._quote_rules(question, hits, prepared.weights, pick)
        answer = replace(answer, sources=_sources(answer.cited, hits, k or self.settings.retrieval.top_k))
        # 5. optionally let an LLM rephrase it (citations kept, numbers checked)
        if self._generator is not None and not answer.abstained:
            answer = self._generator.rewrite(prepared.text, answer)
        return answer

    def _quote(self, question: Question, hits: list[Hit], reading: Reading, ev: Evidence) -> Answer:
        if not hits or not reading.chosen:
            return _abstain(question.when, hits[0] if hits else None)
        best = hits[int(ev.article_of[reading.chosen[0]])]
        if (ordinal := ordinal_mismatch(question.text, best.article)) is not None:
            return _abstain(question.when, best, replies.ONLY_OTHER_ORDINAL.format(ordinal=ordinal))
        if reading.abstain:
            log.debug("abstain (answerable %.2f, %s): %s", reading.answerable, reading.reason, question.text)
            return _abstain(question.when, best)
        cited_hits: list[Hit] = []
        lines = []
        for n_quote, i in enumerate(reading.chosen):
            hit = hits[int(ev.article_of[i])]
            if hit not in cited_hits:
                cited_hits.append(hit)
            n = cited_hits.index(hit) + 1
            quote = reading.lines[n_quote]
            lines.append((replies.LEAD if n_quote == 0 else replies.SUPPORT).format(quote=quote, n=n))
        cited = [_source(h) for h in cited_hits]
        return Answer(_with_citations("\n".join(lines), cited), False, (), tuple(cited))

    def _quote_rules(self, question: Question, hits: list[Hit], weights: Weights, pick: SentencePicker) -> Answer:
        """The hand-set reader: abstain below a coverage floor, quote each cited article's best sentences."""
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
                 store: IndexStore, retriever: Retriever) -> Answer | None:
        """One dated line per matching article; None when only one article matches (the caller quotes it)."""
        articles = self._matching_articles(question, hits, weights, store, retriever)
        if not articles:
            return _abstain(question.when, hits[0] if hits else None)
        if len(articles) == 1 and self.settings.answer.reader == "fitted":
            return None
        # ordered by when it happened; each line shows the event date and the issue it is cited from
        when = question.when
        articles.sort(key=lambda a: (_event_day(a, when), a.issue_date, a.position))
        by_id = {h.article.id: h for h in hits}
        asked = answer_types().asked(question.text)
        lines = [replies.LIST_HEADER.format(n=len(articles))]
        for n, a in enumerate(articles, start=1):
            quote = trim_clauses(pick(a, 1)[0], question.text, asked, LIST_QUOTE_CHARS)
            lines.append(replies.LIST_LINE.format(date=_event_day(a, when).isoformat(), title=a.title,
                                                  issue=a.issue_date.isoformat(), quote=quote, n=n))
        cited = [_source(by_id[a.id]) if a.id in by_id else Source(a.title, a.issue_date, a.unit, a.text, 0.0, a.id)
                 for a in articles]
        return Answer(_with_citations("\n".join(lines), cited), False, (), tuple(cited))

    def _matching_articles(self, question: Question, hits: list[Hit], weights: Weights,
                           store: IndexStore, retriever: Retriever) -> list[StoredArticle]:
        """Return every article a listing question asks for, not cut at top-k, within the places it names."""
        model = self.reader.listing if self.settings.answer.reader == "fitted" else None
        if names_only_a_time(question, weights.unknown):
            # "7月12日那天有哪些活动？", "最近一期有哪些新闻？": every article of that time, retrieved or not
            articles = store.all_articles()
            found = [articles[i] for i in retriever.allowed(question.when)]
        elif model is not None:
            # fitted (bot/reader/listing.py): every candidate scored, those at or above the threshold listed
            candidates, X = listing_candidates(question, weights, hits, retriever, store.all_articles())
            p = model(X)
            found = [a for a, pi in zip(candidates, p) if pi >= self.reader.listing_threshold]
        else:
            scored = [(weights.coverage(h.article.text, skip=GENERIC), h.article) for h in hits]
            top = max((s for s, _ in scored), default=0.0)
            floor = max(self.settings.answer.min_coverage, 0.6 * top)
            found = [a for s, a in scored if s >= floor]
        places = named_places(question.text)
        return [a for a in found if not places or any(p in a.text for p in places)]

def _event_day(article: StoredArticle, when: TimeRange | None = None) -> dt.date:
    """The day an article's event happened: its first printed date (inside the range asked), else its issue date."""
    inside = [d for d in article.event_dates if when is None or when.vague or when.contains(d)]
    return (inside or list(article.event_dates) or [article.issue_date])[0]


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


def _sources(cited: tuple[Source, ...], hits: list[Hit], k: int) -> tuple[Source, ...]:
    """Return the cited articles first, each once (with its best passages), then other evidence; k in all."""
    by_id = {h.article.id: h for h in hits}
    first: list[Source] = []
    for source in cited:
        hit = by_id.get(source.article_id)
        text = "\n".join((hit.text, *hit.more)[:PASSAGES_PER_ARTICLE]) if hit is not None else source.text
        first.append(replace(source, text=text))
    cited_ids = {s.article_id for s in cited}
    rest = _passages([h for h in hits if h.article.id not in cited_ids], max(k - len(first), 0))
    return tuple(first) + rest


def _passages(hits: list[Hit], k: int) -> tuple[Source, ...]:
    """Return up to k evidence passages, best article first, a few from each article."""
    out: list[Source] = []
    if k <= 0:
        return ()
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
