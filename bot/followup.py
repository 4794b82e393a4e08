"""Follow-up questions, for every channel that keeps a conversation (Telegram chats, `bulletin-bot chat`).

A short question without a topic of its own (那一共有多少人参加？) is read against the article the
conversation's last answer cited, while that is fresh.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from bot.results import Answer
from bot.question import content_terms

FOLLOW_UP_STARTS = ("那", "这", "要", "能", "还", "可以", "怎么", "多少", "在哪", "什么时候", "哪里")
FOLLOW_UP_MAX_CHARS = 20           # longer questions carry their own topic
FOLLOW_UP_MAX_TERMS = 2            # ... and so do questions with more content terms than this


def is_follow_up(text: str) -> bool:
    """Return whether a question has no strong topic of its own (那在哪报名？ / 要钱吗？)."""
    text = text.strip()
    if len(text) > FOLLOW_UP_MAX_CHARS:
        return False
    terms = content_terms(text)
    return len(terms) <= FOLLOW_UP_MAX_TERMS and (text.startswith(FOLLOW_UP_STARTS) or len(terms) <= 1)


@dataclass
class ChatTopic:
    """The article a conversation's last answer cited, and when."""

    title: str
    article_id: int
    at: float

    def fresh(self, minutes: float, now: float | None = None) -> bool:
        return ((now or time.monotonic()) - self.at) <= minutes * 60


def topic_after(answer: Answer, topic: ChatTopic | None) -> ChatTopic | None:
    """Return the conversation's topic after an answer: its first cited article, else the one before."""
    if not answer.cited:
        return topic
    return ChatTopic(answer.cited[0].title, answer.cited[0].article_id, time.monotonic())


def with_topic(topic: ChatTopic | None, text: str, minutes: float) -> tuple[str, ChatTopic | None]:
    """Return (the question to answer, the topic still fresh): a follow-up gets the topic's title before it."""
    if topic is None or not topic.fresh(minutes):
        return text, None
    return (f"{topic.title} {text}" if is_follow_up(text) else text), topic
