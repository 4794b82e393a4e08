"""Followers and their topics in ``<data>/follows.db``: a salted user key, the chat id a message goes to, the
topic's words, and which articles each follower was already told about. Nothing else about anyone.

One connection shared by worker threads (channels call it through ``asyncio.to_thread``), serialised by a lock.
"""
from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bot.settings import FollowSettings
from index.paths import FOLLOWS_DB


_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    id INTEGER PRIMARY KEY, user TEXT NOT NULL, channel TEXT NOT NULL, chat TEXT NOT NULL,
    topic TEXT NOT NULL, created TEXT NOT NULL, UNIQUE (user, channel, topic));
CREATE TABLE IF NOT EXISTS sent (
    user TEXT NOT NULL, channel TEXT NOT NULL, article TEXT NOT NULL, sent TEXT NOT NULL,
    PRIMARY KEY (user, channel, article));
"""


@dataclass(frozen=True)
class Followed:
    """One followed topic: whose (salted key), where to send (channel, chat id), what."""

    id: int
    user: str
    channel: str
    chat: str
    topic: str


class FollowLimiter:
    """At most ``per_minute`` follow commands per user in any 60 seconds."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._times: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, user: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._times[user]
            while times and now - times[0] >= 60:
                times.popleft()
            if len(times) >= self.per_minute:
                return False
            times.append(now)
            return True


class FollowStore:
    """Add, list and remove followed topics; remember what each follower was sent."""

    def __init__(self, data_dir: Path, user_key: Callable[[str, object], str], settings: FollowSettings):
        """``user_key(channel, user id)`` is the query log's salted hash (bot.querylog.QueryLog.user_hash)."""
        self.path = Path(data_dir) / FOLLOWS_DB
        self.settings = settings
        self.user_key = user_key
        self.limiter = FollowLimiter(settings.commands_per_minute)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, opened (and the file created) on first use: a bot nobody follows writes nothing."""
        if self._db is None:
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            db.row_factory = sqlite3.Row
            with db:
                db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def add(self, channel: str, user_id: object, chat: object, topic: str) -> bool:
        """Follow a (checked, normalised) topic; return False if the user already follows it."""
        now = dt.datetime.now().isoformat(timespec="seconds")
        with self._lock, self.db:
            cur = self.db.execute("INSERT OR IGNORE INTO topics (user, channel, chat, topic, created) "
                                  "VALUES (?, ?, ?, ?, ?)", (self.user_key(channel, user_id), channel, str(chat), topic, now))
            return cur.rowcount == 1

    def topics_of(self, channel: str, user_id: object) -> list[str]:
        """Return a user's topics in the order followed (what /following numbers)."""
        with self._lock:
            rows = self.db.execute("SELECT topic FROM topics WHERE user = ? AND channel = ? ORDER BY id",
                                   (self.user_key(channel, user_id), channel)).fetchall()
        return [r["topic"] for r in rows]

    def remove(self, channel: str, user_id: object, number: int) -> str | None:
        """Stop following a user's ``number``-th topic (from 1); return it, or None if there is no such one."""
        user = self.user_key(channel, user_id)
        with self._lock, self.db:
            rows = self.db.execute("SELECT id, topic FROM topics WHERE user = ? AND channel = ? ORDER BY id",
                                   (user, channel)).fetchall()
            if not 1 <= number <= len(rows):
                return None
            self.db.execute("DELETE FROM topics WHERE id = ?", (rows[number - 1]["id"],))
            return rows[number - 1]["topic"]

    def all_topics(self) -> list[Followed]:
        if self._db is None and not self.path.exists():
            return []
        with self._lock:
            rows = self.db.execute("SELECT id, user, channel, chat, topic FROM topics ORDER BY id").fetchall()
        return [Followed(**dict(r)) for r in rows]

    def unsent(self, user: str, channel: str, keys: list[str]) -> list[str]:
        """Return the article keys this follower was not sent yet."""
        with self._lock:
            sent = {r["article"] for r in self.db.execute(
                "SELECT article FROM sent WHERE user = ? AND channel = ?", (user, channel))}
        return [k for k in keys if k not in sent]

    def mark_sent(self, user: str, channel: str, keys: list[str]) -> None:
        now = dt.datetime.now().isoformat(timespec="seconds")
        with self._lock, self.db:
            self.db.executemany("INSERT OR IGNORE INTO sent (user, channel, article, sent) VALUES (?, ?, ?, ?)",
                                [(user, channel, k, now) for k in keys])

    def drop_chat(self, channel: str, chat: object) -> int:
        """Forget every topic of a chat that cannot be reached any more (the user blocked the bot)."""
        with self._lock, self.db:
            return self.db.execute("DELETE FROM topics WHERE channel = ? AND chat = ?", (channel, str(chat))).rowcount

    def counts(self) -> dict[str, int]:
        """Return how many followers (user per channel) and topics there are."""
        if self._db is None and not self.path.exists():
            return {"followers": 0, "topics": 0}
        with self._lock:
            row = self.db.execute("SELECT COUNT(DISTINCT user || channel) AS followers, COUNT(*) AS topics "
                                  "FROM topics").fetchone()
        return {"followers": row["followers"], "topics": row["topics"]}

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
