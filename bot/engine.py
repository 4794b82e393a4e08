"""The engine: the one object the channels and the command line use for everything.

    engine = Engine(settings)                  # cheap: nothing is loaded yet
    engine.start()                             # builds the index of the bundled bulletins when there is none
    answer = engine.answer("镇平县签约了多少人？")            # the CLI, in this thread
    asked = await engine.ask(text, channel="web", user_id=ip)   # a channel: on the answer workers, logged
    rows = await engine.io(engine.issues)      # a channel: any other call, on the engine's I/O threads

It owns the served generation (opened by the answerer, swapped under its lock, checked for damage off the
event loop), the answerer, the query log, the followers and the answer workers (bot/pool.py). Channels
format what it returns and send it; they never open the index, the embedder or a path.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

from bot.follow.commands import FollowReply, Following, feed_url
from bot.follow.feed import atom_feed
from bot.follow.match import TopicMatcher, question_topic, topic_words
from bot.follow.notices import Notice, changed_issues, plan
from bot.follow.store import FollowStore
from bot.pool import AnswerPool, watch, worker_count
from bot.querylog import QueryLog, load_salt
from bot.results import Answer, Source
from bot.settings import Settings, reference_day
from corpus.errors import BulletinBotError, ConfigError
from index.build import SUFFIXES, IngestReport, build_index, ensure_index, index_identity, ingest_files
from index.embedding import Embedder, resolve_model
from index.errors import IndexBusy, IndexCorrupt, IndexMismatch
from index.paths import FOLLOWS_DB, MODELS_DIR
from index.store import GenerationHealth, StoredArticle, index_errors

log = logging.getLogger(__name__)

Article = StoredArticle          # what article(), search(), latest() return: the channels' name for it
UPLOAD_SUFFIXES = SUFFIXES       # the bulletin files ingest reads
KEPT_FEEDS = 256                 # feeds kept made (per generation, topic and base URL)
IO_THREADS = 4                   # reads, log writes and follow commands: never behind answers
__all__ = ["Engine", "Asked", "Article", "Answer", "Source", "Notice", "FollowReply", "IngestReport",
           "BulletinBotError", "ConfigError", "IndexBusy", "IndexCorrupt", "IndexMismatch", "UPLOAD_SUFFIXES"]


@dataclass(frozen=True)
class Asked:
    """A logged answer: the answer, its query-log id (for feedback buttons) and how long it took."""

    answer: Answer
    query_id: int
    latency_ms: float


class Engine:
    """Answering, reading, writing and following over one data folder."""

    def __init__(self, settings: Settings, *, today: dt.date | None = None, embedder: Embedder | None = None,
                 answerer=None, querylog: QueryLog | None = None, workers: int | None = None):
        self.settings = settings
        self._today = today
        self._embedder = embedder if embedder is not None else getattr(answerer, "embedder", None)
        self._answerer = answerer
        self._querylog = querylog
        self._follows: FollowStore | None = None
        self._matcher: TopicMatcher | None = None
        self._following: Following | None = None
        self._lock = threading.RLock()              # the parts below are made once, by one thread
        self._workers = worker_count(settings.web.workers if workers is None else workers)
        self._pool: AnswerPool | None = None
        self._watching = None                      # set: stops the generation watcher
        self._io: ThreadPoolExecutor | None = None
        self._health = GenerationHealth()
        self._feeds: dict[tuple, bytes] = {}

    # -- parts, made on first use -----------------------------------------------------------------
    def _once(self, name: str, make):
        value = getattr(self, name)
        if value is None:
            with self._lock:
                value = getattr(self, name)
                if value is None:
                    value = make()
                    setattr(self, name, value)
        return value

    @property
    def embedder(self) -> Embedder:
        return self._once("_embedder", lambda: Embedder(resolve_model(self.settings.index)))

    @property
    def answerer(self):
        def make():
            from bot.answer import Answerer
            self.start()
            return Answerer(self.settings, self.embedder, today=self._today)
        return self._once("_answerer", make)

    @property
    def querylog(self) -> QueryLog:
        return self._once("_querylog", lambda: QueryLog(self.settings.data_dir, load_salt(
            self.settings.data_dir, self.settings.querylog.salt_env)))

    @property
    def follows(self) -> FollowStore:
        return self._once("_follows", lambda: FollowStore(self.settings.data_dir, self.querylog.user_hash,
                                                          self.settings.follow))

    @property
    def matcher(self) -> TopicMatcher:
        return self._once("_matcher", lambda: TopicMatcher(self.answerer, self.settings.follow))

    @property
    def _follow_commands(self) -> Following:
        return self._once("_following", lambda: Following(self.settings.follow, self.follows, self.matcher))

    def start(self, progress: bool = False, say: Callable[[str], None] | None = None) -> Path:
        """Return the served generation, building the bundled bulletins' index first when there is none."""
        return ensure_index(self.settings.index, self.embedder, progress, **({"say": say} if say else {}))

    @property
    def today(self) -> dt.date:
        return self._today or reference_day(self.settings)

    def _store(self):
        return self.answerer.refresh()[0]

    # -- answering ----------------------------------------------------------------------------------
    def answer(self, text: str, k: int | None = None) -> Answer:
        """Answer one question in this thread (the CLI; the single answer worker)."""
        return self.answerer.answer(text, k=k)

    def record(self, *, channel: str, user_id: object, question: str, answer: Answer, latency_ms: float,
               chat_type: str = "private") -> int:
        """Log an answered question (the user id salted and hashed); return its query-log id."""
        return self.querylog.record(channel=channel, user_id=user_id, chat_type=chat_type, question=question,
                                    answer=answer, latency_ms=latency_ms)

    async def ask(self, text: str, *, channel: str, user_id: object, chat_type: str = "private",
                  k: int | None = None, asked: str | None = None,
                  gone: Callable[[], Awaitable[bool]] | None = None) -> Asked | None:
        """Answer ``text`` on the answer workers and log it as ``asked`` (what the user typed, default the text).

        Returns None, computing nothing, when ``gone()`` says the client left while the question waited.
        A damaged served database is ``IndexCorrupt``.
        """
        started = time.perf_counter()
        answer = await self.pool.answer(text, k, gone)
        if answer is None:
            return None
        latency_ms = (time.perf_counter() - started) * 1000
        query_id = await self.io(self.record, channel=channel, user_id=user_id, chat_type=chat_type,
                                 question=asked or text, answer=answer, latency_ms=latency_ms)
        return Asked(answer, query_id, latency_ms)

    @property
    def pool(self) -> AnswerPool:
        def make():
            pool = AnswerPool(self.settings, self._workers, index_errors(self.answer), self._today)
            if self._workers == 1:
                self.answerer                                   # loaded now, not by the first question
            return pool
        return self._once("_pool", make)

    def warm(self) -> None:
        """Load the answerer (building the index when there is none), start the answer workers and the
        watcher that opens each new generation before a question needs it (``serve`` calls this before
        it listens)."""
        answerer = self.answerer
        with self._lock:
            if self._watching is None:
                self._watching = watch(answerer, self.settings.web.watch_s)
        self.pool.warm()

    async def io(self, fn: Callable, *args, **kwargs):
        """Run a blocking engine call on the engine's I/O threads (never behind answers, never on the loop);
        a damaged served database is ``IndexCorrupt``."""
        executor = self._once("_io", lambda: ThreadPoolExecutor(IO_THREADS, thread_name_prefix="engine-io"))
        call = functools.partial(index_errors(fn), *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(executor, call)

    def question_topic(self, question: str, cited: str = "") -> str:
        """The topic an answered question is about (its 关注这个话题 button)."""
        return question_topic(self.answerer, question, cited)

    # -- reading the index ----------------------------------------------------------------------------
    def issues(self) -> list[dict]:
        """The indexed issues, newest first."""
        return self._store().issues()

    def article(self, article_id: int) -> Article | None:
        return self._store().all_articles().get(article_id)

    def find_article(self, date: str, title: str) -> Article | None:
        """The article a citation names: its issue date (YYYY-MM-DD) and title."""
        return next((a for a in self._store().all_articles().values()
                     if a.issue_date.isoformat() == date and a.title == title), None)

    def latest(self) -> tuple[dict | None, list[Article]]:
        """The newest issue and its articles in printed order ((None, []) when nothing is indexed)."""
        store = self._store()
        issues = store.issues()
        if not issues:
            return None, []
        newest = issues[0]
        return newest, sorted((a for a in store.all_articles().values() if a.issue_key == newest["key"]),
                              key=lambda a: a.position)

    def search(self, query: str) -> list[Article]:
        """The articles holding every space-separated keyword, newest first."""
        words = [w.lower() for w in query.split() if w]
        found = [a for a in self._store().all_articles().values() if all(w in a.text.lower() for w in words)]
        return sorted(found, key=lambda a: (a.issue_date, -a.position), reverse=True)

    def health(self, deep: bool = False) -> dict:
        """Whether an index is served and whole: {"status": "ok"|"error", "index_loaded", "issues", ...}.

        Raises ``BulletinBotError`` when no index can be served at all. Sizes are checked each call,
        checksums every ``GenerationHealth.deep_every_s`` or when ``deep``.
        """
        store = self._store()
        issues = store.issues()
        body = {"status": "ok", "index_loaded": True, "generation": store.path.name, "issues": len(issues),
                "articles": sum(r["articles"] for r in issues),
                "last_ingest": max((r["ingested_at"] for r in issues), default=None)}
        damaged = self._health(store.path, deep)
        if damaged:
            body |= {"status": "error", "error": f"{damaged}；请运行 bulletin-bot reindex"}
        return body

    # -- writing --------------------------------------------------------------------------------------
    def ingest(self, paths: list[Path], progress: bool = False) -> IngestReport:
        """Add bulletin files to the corpus and the index (a new generation, swapped in whole)."""
        report = ingest_files(self.settings.index, self.embedder, [Path(p) for p in paths], progress=progress)
        self._refresh()
        return report

    def reindex(self, progress: bool = False, wait: bool = True,
                on_issue: Callable[[int, int, str], None] | None = None) -> Path:
        """Rebuild the index from the corpus folder into a new generation and swap it in."""
        self.start(progress)
        path = build_index(self.settings.index, self.embedder, progress=progress, wait=wait, on_issue=on_issue)
        self._refresh()
        return path

    def _refresh(self) -> None:
        """Serve the generation just swapped in, here and in every worker process, before returning."""
        if self._answerer is not None:
            self._answerer.refresh(wait=True)
        if self._pool is not None:
            self._pool.refresh()

    def backup(self, target: Path) -> dict:
        """Write the corpus, the served index, the query log and the followers into one .tar.gz."""
        from index.archive import backup
        return backup(self.settings.data_dir, Path(target))

    def restore(self, archive: Path, force: bool = False) -> dict:
        """Restore a backup into the data folder (checked whole before anything is replaced)."""
        from index.archive import restore
        return restore(Path(archive), self.settings.data_dir, index_identity(self.settings.index, self.embedder), force)

    def convert_model(self, onnx: bool = True, say: Callable[[str], None] = log.info) -> Path:
        """Rebuild the bundled 4-bit e5 model as a sentence-transformers folder (+ ONNX) in <data>/models."""
        from index.e5_convert import FOLDER_NAME, build_model
        return build_model(self.settings.data_dir / MODELS_DIR / FOLDER_NAME, onnx=onnx, say=say)

    # -- the query log --------------------------------------------------------------------------------
    def user_hash(self, channel: str, user_id: object) -> str:
        return self.querylog.user_hash(channel, user_id)

    def feedback(self, query_id: int, value: int, channel: str, user_id: object) -> bool:
        """Record 👍 (1) / 👎 (-1) for a logged question; only its asker counts."""
        return self.querylog.feedback(query_id, value, self.querylog.user_hash(channel, user_id))

    def logged_question(self, query_id: int) -> tuple[str, str] | None:
        """(question, citation of its first source) of a logged question, or None."""
        return self.querylog.question(query_id)

    def stats(self) -> dict:
        """Questions per day and week, abstention rate, feedback, top questions, followers and topics."""
        return self.querylog.stats() | {"follows": self.follows.counts()}

    def unanswered(self) -> list[dict]:
        return self.querylog.unanswered()

    # -- following ------------------------------------------------------------------------------------
    def follow(self, channel: str, user_id: object, chat: object, topic: str) -> FollowReply:
        return self._follow_commands.follow(channel, user_id, chat, topic)

    def following(self, channel: str, user_id: object) -> str:
        return self._follow_commands.following(channel, user_id)

    def unfollow(self, channel: str, user_id: object, number: str) -> str:
        return self._follow_commands.unfollow(channel, user_id, number)

    def feed_url(self, topic: str | None = None) -> str:
        return feed_url(self.settings.follow, self.settings.web, topic)

    @staticmethod
    def topic_words(topic: str) -> list[str]:
        return topic_words(topic)

    def has_followers(self) -> bool:
        return (self.settings.data_dir / FOLLOWS_DB).exists()

    def snapshot(self) -> dict[str, str]:
        """The served issues (key -> content hash): take it before an ingest or a reindex."""
        return {row["key"]: row["content_hash"] for row in self.issues()}

    def notices(self, before: dict[str, str]) -> list[Notice]:
        """What to tell which follower about the issues added or replaced since ``before``."""
        return plan(self.matcher, self.follows, changed_issues(self._store(), before))

    def mark_sent(self, user: str, channel: str, keys: list[str]) -> None:
        self.follows.mark_sent(user, channel, keys)

    def drop_chat(self, channel: str, chat: object) -> int:
        return self.follows.drop_chat(channel, chat)

    def feed(self, topic: str, base: str, entries: int) -> bytes:
        """An Atom feed of every article, or of those ``topic`` matches, newest first; kept per generation."""
        store = self._store()
        key = (store.path.name, topic, base, entries)
        if key not in self._feeds:
            if topic:
                pairs = [(m.article, m.lead) for m in self.matcher.match(topic)]
            else:
                pairs = [(a, "") for a in store.all_articles().values()]
            pairs.sort(key=lambda p: (-p[0].issue_date.toordinal(), p[0].position))
            with self._lock:
                self._feeds[key] = atom_feed(pairs[:entries], base, topic or None)
                while len(self._feeds) > KEPT_FEEDS:
                    self._feeds.pop(next(iter(self._feeds)))
        return self._feeds[key]

    def close(self) -> None:
        """Stop the answer workers, the generation watcher and the I/O threads."""
        if self._watching is not None:
            self._watching.set()
        if self._pool is not None:
            self._pool.close()
        if self._io is not None:
            self._io.shutdown(wait=False, cancel_futures=True)
