"""Follow, list and unfollow, as every channel offers them: each call returns the reply text.

Checks come first, cheapest first: the per-user rate limit, an empty or overlong topic, the number of topics,
a duplicate; then the topic is stored and, so the user knows what to expect, matched once against what is
already indexed ("no bulletin has matched it yet" is said, and the topic is kept).
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from bot import replies
from bot.follow.match import TopicMatcher, topic_words
from bot.follow.store import FollowStore
from bot.settings import FollowSettings, WebSettings


def feed_url(follow: FollowSettings, web: WebSettings, topic: str | None = None) -> str:
    """Return the Atom feed's public URL, of one topic or of every issue."""
    base = follow.public_url.rstrip("/") or f"http://{web.host}:{web.port}"
    return f"{base}/feed.xml" + (f"?q={quote(topic)}" if topic else "")


@dataclass(frozen=True)
class FollowReply:
    """What a follow command says, and the topic it added ("" when it added none)."""

    text: str
    added: str = ""


class Following:
    """The follow commands over one store and one matcher, for any channel."""

    def __init__(self, limits: FollowSettings, store: FollowStore, matcher: TopicMatcher):
        self.limits, self.store, self.matcher = limits, store, matcher

    def follow(self, channel: str, user_id: object, chat: object, text: str) -> FollowReply:
        """Follow the topic ``text``; return what to tell the user (runs the matcher: call it in a worker)."""
        if not self.store.limiter.allow(f"{channel}:{user_id}"):
            return FollowReply(replies.FOLLOW_RATE_LIMITED)
        words = topic_words(text or "")
        topic = " ".join(words)
        if not topic:
            return FollowReply(replies.FOLLOW_EMPTY)
        if len(topic) > self.limits.max_topic_chars:
            return FollowReply(replies.FOLLOW_TOO_LONG.format(n=len(topic), limit=self.limits.max_topic_chars))
        followed = self.store.topics_of(channel, user_id)
        if topic in followed:
            return FollowReply(replies.FOLLOW_DUPLICATE.format(topic=topic))
        if len(followed) >= self.limits.max_topics:
            return FollowReply(replies.FOLLOW_TOO_MANY.format(limit=self.limits.max_topics))
        if not self.store.add(channel, user_id, chat, topic):
            return FollowReply(replies.FOLLOW_DUPLICATE.format(topic=topic))
        matched = self.matcher.match(topic)
        so_far = (replies.FOLLOW_MATCHED_BEFORE.format(n=len(matched), citation=matched[0].citation()) if matched
                  else replies.FOLLOW_NEVER_MATCHED.format(topic=topic))
        return FollowReply(replies.FOLLOW_ADDED.format(topic=topic) + "\n" + so_far, topic)

    def following(self, channel: str, user_id: object) -> str:
        topics = self.store.topics_of(channel, user_id)
        if not topics:
            return replies.FOLLOWING_NONE
        return "\n".join([replies.FOLLOWING_HEADER] + [replies.FOLLOWING_LINE.format(n=n, topic=t)
                                                       for n, t in enumerate(topics, start=1)])

    def unfollow(self, channel: str, user_id: object, text: str) -> str:
        """Stop following the topic numbered ``text`` (as /following lists them)."""
        if not self.store.limiter.allow(f"{channel}:{user_id}"):
            return replies.FOLLOW_RATE_LIMITED
        number = (text or "").strip()
        if not number.isdigit() or len(number) > 4:
            return replies.UNFOLLOW_USAGE
        removed = self.store.remove(channel, user_id, int(number))
        if removed is None:
            return replies.UNFOLLOW_BAD_NUMBER.format(n=int(number))
        return replies.UNFOLLOWED.format(topic=removed)
