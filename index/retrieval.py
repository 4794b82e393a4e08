"""Hybrid retrieval: keyword (FTS5 BM25) and vector (FAISS) ranks fused per article, narrowed by dates."""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from corpus.dates import TimeRange
from index.embedding import Embedder
from index.keywords import query_terms
from index.store import IndexStore, StoredArticle
from index.settings import RetrievalSettings

RECENT_DAYS = 120          # a vague "最近" prefers articles of about the last four months


@dataclass(frozen=True)
class Hit:
    """One article found for a question, with its best passage."""

    article: StoredArticle
    chunk_id: int
    text: str              # the best-matching passage of the article
    score: float           # fused rank score (higher is better)
    cosine: float          # best vector similarity among the article's chunks (0 if none)
    keyword_rank: int      # rank of the article in keyword search (1 = first, 0 = not found)
    vector_rank: int       # rank of the article in vector search (1 = first, 0 = not found)
    more: tuple[str, ...] = ()   # the article's other matching passages, best first

    @property
    def agreed(self) -> bool:
        """Return whether keyword and vector search, each on its own, rank this article among their first two."""
        return 1 <= self.keyword_rank <= 2 and 1 <= self.vector_rank <= 2


class DateTable:
    """Every article's issue and event dates as arrays, so a time range is matched without a Python loop.

    An article is in a range when its issue date or one of its event dates falls in it, or, for a
    whole calendar year, when its text names that year ("2024年").
    """

    def __init__(self, articles: dict[int, StoredArticle]):
        self.articles = articles
        self.ids = np.fromiter(articles, dtype=np.int64, count=len(articles))
        self.issue = np.fromiter((a.issue_date.toordinal() for a in articles.values()), dtype=np.int64,
                                 count=len(articles))
        pairs = [(i, d.toordinal()) for i, a in articles.items() for d in a.event_dates]
        self.event_ids = np.array([p[0] for p in pairs], dtype=np.int64)
        self.event = np.array([p[1] for p in pairs], dtype=np.int64)
        self.latest = int(self.issue.max()) if len(self.issue) else None
        self._years: dict[int, set[int]] = {}

    def naming_year(self, year: int) -> set[int]:
        """Return the articles whose text names the year ("2024年"), computed once per year."""
        if year not in self._years:
            mark = f"{year}年"
            self._years[year] = {i for i, a in self.articles.items() if mark in a.text}
        return self._years[year]

    def newest_issue(self) -> dt.date | None:
        """Return the newest indexed issue's date (None for an empty index)."""
        return dt.date.fromordinal(self.latest) if self.latest is not None else None

    def on(self, when: TimeRange) -> list[int]:
        """Return the ids of the articles a time range admits, by the first day of theirs in it.

        The day is the article's first event date printed in the range, else its issue date; ties
        go by issue date, then by position in the issue.
        """
        ids = self.admitted(when)
        start, end = when.start.toordinal(), when.end.toordinal()
        first: dict[int, int] = {}
        for aid, day in zip(self.event_ids.tolist(), self.event.tolist()):
            if aid in ids and start <= day <= end:
                first[aid] = min(first.get(aid, day), day)
        def key(aid: int) -> tuple:
            a = self.articles[aid]
            return (first.get(aid, a.issue_date.toordinal()), a.issue_date, a.position, aid)
        return sorted(ids, key=key)

    def admitted(self, when: TimeRange) -> set[int]:
        if when.latest_issue:
            return set(self.ids[self.issue == self.latest].tolist()) if self.latest is not None else set()
        start, end = when.start.toordinal(), when.end.toordinal()
        found = set(self.ids[(self.issue >= start) & (self.issue <= end)].tolist())
        found.update(self.event_ids[(self.event >= start) & (self.event <= end)].tolist())
        whole_year = (when.start.month, when.start.day, when.end.month, when.end.day) == (1, 1, 12, 31) \
            and when.start.year == when.end.year
        if whole_year:
            found |= self.naming_year(when.start.year)
        return found


class Retriever:
    """Search one index generation."""

    def __init__(self, store: IndexStore, embedder: Embedder, settings: RetrievalSettings):
        self.store, self.embedder, self.settings = store, embedder, settings
        self._date_table: DateTable | None = None       # a Retriever serves one generation, never written
        self._allowed: dict[TimeRange, set[int]] = {}

    @staticmethod
    def _ranked(pairs: list[tuple[int, float]], rows: dict[int, dict]) -> dict[int, list[tuple[int, int, float]]]:
        """Map article id -> its chunks' (article rank from 1, chunk id, score), best first."""
        ranked: dict[int, list[tuple[int, int, float]]] = {}
        for cid, score in pairs:
            row = rows.get(cid)
            if row is not None:
                ranked.setdefault(row["article_id"], []).append((len(ranked) + 1, cid, score))
        return {aid: [(chunks[0][0], cid, score) for _, cid, score in chunks] for aid, chunks in ranked.items()}

    def allowed(self, when: TimeRange | None) -> set[int] | None:
        """Return the article ids a time range admits, or None when it admits all."""
        if when is None or when.vague:
            return None
        if when not in self._allowed:
            if len(self._allowed) >= 64:
                self._allowed.clear()
            self._allowed[when] = self._dates().admitted(when)
        return self._allowed[when]

    def newest_issue(self) -> dt.date | None:
        """Return the newest indexed issue's date: what a yearless "7月12日" is read against."""
        return self._dates().newest_issue()

    def articles_on(self, when: TimeRange) -> list[StoredArticle]:
        """Return every article of a (non-vague) time range, retrieved or not, in event-date order.

        For a dated question with no other content ("7月9号有啥动静", "7月12日都有哪些活动"):
        every article whose issue date or a date printed in its body falls in the range.
        """
        if when.vague:
            return []
        table = self._dates()
        return [table.articles[i] for i in table.on(when)]

    def _dates(self) -> "DateTable":
        if self._date_table is None:
            self._date_table = DateTable(self.store.all_articles())
        return self._date_table

    def selective_terms(self, terms: tuple[str, ...]) -> tuple[str, ...]:
        """Return the terms keyword search matches: in a large index, those not found in most chunks.

        When every term is that common, the rarest one is kept.
        """
        total = self.store.chunk_count()
        if total < self.settings.common_terms_from or not terms:
            return terms
        counts = self.store.term_document_counts(terms)
        limit = self.settings.common_term_share * total
        kept = tuple(t for t in terms if counts.get(t, 0) <= limit)
        return kept or (min(terms, key=lambda t: counts.get(t, 0)),)

    def search(self, question: str, when: TimeRange | None = None, today: dt.date | None = None,
               limit: int | None = None, query_vector: np.ndarray | None = None) -> list[Hit]:
        """Return articles best first: RRF of keyword and vector ranks, within the time range."""
        allowed = self.allowed(when)
        n = self.settings.candidates * (4 if allowed is not None else 1)
        if query_vector is None:
            query_vector = self.embedder.encode_query(question)
        keyword_pairs = self.store.keyword_search(self.selective_terms(query_terms(question)), n)
        vector_pairs = self.store.vector_search(query_vector, n)
        rows = self.store.chunk_rows(list({cid for cid, _ in keyword_pairs + vector_pairs}))   # one read for both
        keyword, vector = self._ranked(keyword_pairs, rows), self._ranked(vector_pairs, rows)
        articles = self.store.all_articles()
        k = self.settings.rrf_k
        scored = []
        for aid in set(keyword) | set(vector):
            if allowed is not None and aid not in allowed:
                continue
            score = sum(1.0 / (k + ranks[aid][0][0]) for ranks in (keyword, vector) if aid in ranks)
            if when is not None and when.vague and today is not None:
                age = (today - articles[aid].issue_date).days
                score *= 1.0 + 0.25 * math.exp(-max(age, 0) / RECENT_DAYS)
            scored.append((score, aid))
        scored.sort(key=lambda h: (-h[0], h[1]))
        return [self._hit(articles[aid], score, keyword.get(aid, []), vector.get(aid, []), rows)
                for score, aid in scored[:limit]]

    @staticmethod
    def _hit(article: StoredArticle, score: float, keyword: list, vector: list, rows: dict[int, dict]) -> Hit:
        """Make a Hit whose passages are the article's chunks, vector-best first, then keyword-best."""
        chunk_ids = list(dict.fromkeys([c for _, c, _ in vector] + [c for _, c, _ in keyword]))
        texts = [rows[c]["text"] for c in chunk_ids]
        return Hit(article, chunk_ids[0], texts[0], score, vector[0][2] if vector else 0.0,
                   keyword[0][0] if keyword else 0, vector[0][0] if vector else 0, tuple(texts[1:]))


class BulletinRetriever(BaseRetriever):
    """LangChain retriever over the bulletins: any LangChain chain can use it."""

    retriever: Retriever
    k: int = 5

    model_config = {"arbitrary_types_allowed": True}

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [Document(page_content=h.text, metadata={
            "title": h.article.title, "date": h.article.issue_date.isoformat(), "unit": h.article.unit,
            "article_id": h.article.id, "score": h.score}) for h in self.retriever.search(query, limit=self.k)]
