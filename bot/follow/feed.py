"""Atom feeds of the bulletins, made with feedgen: every article, or those a topic matches; newest first.

Each entry is one article: its title, the issue date as the updated time, the issuing unit as the author,
its lead line (a topic's) or opening sentences as the summary, the full text as the content, and a link
to the article on the web page's API (what a citation opens).
"""
from __future__ import annotations

import datetime as dt
import hashlib
from urllib.parse import quote

from feedgen.feed import FeedGenerator

from bot import replies
from index.store import StoredArticle

SUMMARY_CHARS = 160
TAG = "tag:bulletin-bot,2025"          # entries and feeds need IRIs that never change


def article_url(base: str, article: StoredArticle) -> str:
    return f"{base}/api/article?date={article.issue_date.isoformat()}&title={quote(article.title)}"


def atom_feed(articles: list[tuple[StoredArticle, str]], base: str, topic: str | None = None) -> bytes:
    """Return the Atom XML of (article, summary) pairs, newest issue first (the order given is not trusted)."""
    articles = sorted(articles, key=lambda p: (-p[0].issue_date.toordinal(), p[0].position))
    fg = FeedGenerator()
    self_url = f"{base}/feed.xml" + (f"?q={quote(topic)}" if topic else "")
    fg.id(f"{TAG}:feed:" + (hashlib.sha1(topic.encode("utf-8")).hexdigest()[:16] if topic else "all"))
    fg.title(replies.FEED_TOPIC_TITLE.format(topic=topic) if topic else replies.FEED_ALL_TITLE)
    fg.subtitle(replies.FEED_SUBTITLE)
    fg.link(href=self_url, rel="self")
    fg.link(href=f"{base}/", rel="alternate")
    fg.language("zh-CN")
    fg.updated(_when(articles[0][0].issue_date) if articles else _when(dt.date(2024, 1, 1)))
    for article, summary in reversed(articles):     # feedgen puts each new entry first
        entry = fg.add_entry()
        entry.id(f"{TAG}:article:{article.issue_key}:{hashlib.sha1(article.title.encode('utf-8')).hexdigest()[:16]}")
        entry.title(article.title)
        entry.link(href=article_url(base, article))
        entry.updated(_when(article.issue_date, article.position))
        entry.published(_when(article.issue_date, article.position))
        entry.author({"name": article.unit or "南阳市卫健体委"})
        entry.summary(summary or article.body[:SUMMARY_CHARS])
        entry.content(article.text, type="text")
    return fg.atom_str(pretty=True)


def _when(day: dt.date, position: int = 0) -> dt.datetime:
    """The issue's date as a time (articles of one issue a minute apart, the lead first, so readers keep the order)."""
    return dt.datetime(day.year, day.month, day.day, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))) \
        - dt.timedelta(minutes=position)
