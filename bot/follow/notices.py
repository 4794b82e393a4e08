"""After an ingest or a reindex: which followers to tell about which new or replaced articles.

One notice per follower per issue, listing every matching article of that issue with its lead line and
citation. An article already sent to that follower (a replaced issue with the same article) is not listed
again: what was sent is remembered by issue date and title. The channels send them (bot/channels/notify.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from bot import replies
from bot.follow.match import Match, TopicMatcher
from bot.follow.store import FollowStore
from index.store import IndexStore

log = logging.getLogger(__name__)
MAX_LISTED = 10                  # articles listed in one notice (an issue rarely has more on one topic)


@dataclass
class Notice:
    """What one follower (salted key, channel, chat) is told about one issue."""

    user: str
    channel: str
    chat: str
    issue: str
    topics: list[str] = field(default_factory=list)
    matches: list[Match] = field(default_factory=list)

    def text(self) -> str:
        lines = [replies.FOLLOW_NOTICE_HEADER.format(topics="」「".join(self.topics), date=self.issue)]
        lines += [replies.FOLLOW_NOTICE_LINE.format(n=n, lead=m.lead or m.article.title, citation=m.citation())
                  for n, m in enumerate(self.matches[:MAX_LISTED], start=1)]
        return "\n".join(lines + [replies.FOLLOW_NOTICE_FOOTER])

    @property
    def keys(self) -> list[str]:
        return [m.key for m in self.matches[:MAX_LISTED]]



def changed_issues(store: IndexStore, before: dict[str, str]) -> dict[str, set[int]]:
    """Return {issue key: its article ids} for every issue added or replaced since ``before`` (key -> hash)."""
    changed = {row["key"] for row in store.issues() if before.get(row["key"]) != row["content_hash"]}
    out: dict[str, set[int]] = {key: set() for key in changed}
    for article in store.all_articles().values():
        if article.issue_key in out:
            out[article.issue_key].add(article.id)
    return out


def plan(matcher: TopicMatcher, store: FollowStore, changed: dict[str, set[int]]) -> list[Notice]:
    """Match every followed topic against each changed issue once; one notice per follower and issue,
    without the articles that follower was already sent."""
    followed = store.all_topics()
    if not changed or not followed:
        return []
    notices: dict[tuple[str, str, str, str], Notice] = {}
    for issue, ids in sorted(changed.items()):
        found = {topic: matcher.match(topic, among=ids) for topic in sorted({f.topic for f in followed})}
        for f in followed:
            if not found[f.topic]:
                continue
            notice = notices.setdefault((f.user, f.channel, f.chat, issue), Notice(f.user, f.channel, f.chat, issue))
            notice.topics.append(f.topic)
            known = {m.key for m in notice.matches}
            notice.matches += [m for m in found[f.topic] if m.key not in known]
    out = []
    for notice in notices.values():
        fresh = set(store.unsent(notice.user, notice.channel, [m.key for m in notice.matches]))
        notice.matches = [m for m in notice.matches if m.key in fresh]
        if notice.matches:
            out.append(notice)
    log.info("follow: %d notices for %d changed issue(s), %d followed topics", len(out), len(changed), len(followed))
    return out
