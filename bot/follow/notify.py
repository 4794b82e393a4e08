"""After an ingest or a reindex: which followers to tell about which new articles, and telling them.

    before = issue_hashes(...)            # the served generation's issues, before the write
    ... ingest / reindex ...
    notices = plan(matcher, store, changed_issues(matcher.answerer.store, before))
    await send_telegram(bot, store, [n for n in notices if n.channel == "telegram"])

One message per follower per issue, listing every matching article of that issue with its lead line and
citation. An article already sent to that follower (a replaced issue with the same article) is not sent
again: what was sent is remembered by issue date and title. A Telegram chat that blocked the bot (403) is
dropped with its topics. Messages go out through PTB, whose AIORateLimiter paces them.
"""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field

import requests
from telegram.constants import ParseMode
from telegram.error import Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from wechatpy.exceptions import WeChatClientException

from bot import replies
from bot.follow.commands import feed_url
from bot.follow.match import Match, TopicMatcher
from bot.follow.store import FollowStore
from bot.telegram_format import split_html
from index.store import IndexStore

log = logging.getLogger(__name__)
MAX_LISTED = 10                  # articles listed in one notice (an issue rarely has more on one topic)
SEND_AT_ONCE = 30                # Telegram notices in flight at once (the rate limiter paces them further)
SEND_ATTEMPTS = 6                # tries per notice after a 429, a timeout or a network error


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


@dataclass
class Delivery:
    sent: int = 0
    dropped: int = 0            # chats that blocked the bot, forgotten
    failed: int = 0             # not delivered (not marked sent: a corrected issue would list them again)

    def line(self) -> str:
        return replies.FOLLOW_NOTIFIED.format(sent=self.sent, dropped=self.dropped, failed=self.failed)


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


async def send_telegram(bot, store: FollowStore, notices: list[Notice]) -> Delivery:
    """Send the Telegram notices, SEND_AT_ONCE at a time; PTB's rate limiter paces them.

    A flood-limit answer (429) waits as long as Telegram asks and a timeout or network error backs off, then
    the notice is tried again from the piece that failed (SEND_ATTEMPTS in all), so a busy machine or a
    throttled burst loses nothing. Blocked chats are dropped; other refusals are counted as failed.
    """
    delivery = Delivery()
    gate = asyncio.Semaphore(SEND_AT_ONCE)

    async def one(notice: Notice) -> None:
        pieces = split_html(notice.text())
        done = 0
        async with gate:
            for attempt in range(SEND_ATTEMPTS):
                try:
                    while done < len(pieces):
                        await bot.send_message(int(notice.chat), pieces[done], parse_mode=ParseMode.HTML)
                        done += 1
                    break
                except Forbidden:
                    delivery.dropped += 1
                    await asyncio.to_thread(store.drop_chat, notice.channel, notice.chat)
                    return
                except RetryAfter as exc:
                    wait = exc.retry_after
                    await asyncio.sleep(wait.total_seconds() if hasattr(wait, "total_seconds") else float(wait))
                except (TimedOut, NetworkError) as exc:
                    log.info("follow: a notice will be tried again (%s)", type(exc).__name__)
                    await asyncio.sleep(min(2 ** attempt, 30))
                except TelegramError as exc:
                    delivery.failed += 1
                    log.warning("follow: a notice was not delivered (%s)", type(exc).__name__)
                    return
            else:
                delivery.failed += 1
                log.warning("follow: a notice was not delivered after %d attempts", SEND_ATTEMPTS)
                return
        delivery.sent += 1
        await asyncio.to_thread(store.mark_sent, notice.user, notice.channel, notice.keys)

    await asyncio.gather(*(one(n) for n in notices if n.channel == "telegram"))
    return delivery


def send_wechat(client, template_id: str, store: FollowStore, notices: list[Notice], feed) -> Delivery:
    """Send WeChat notices as template messages (blocking: call it in a worker thread).

    The template's fields: first (the header), keyword1 (the articles with their citations), keyword2 (the
    issue date), remark (how to stop); the message opens the topic's feed, ``feed(topic)``.
    """
    delivery = Delivery()
    for notice in (n for n in notices if n.channel == "wechat"):
        header, *lines = notice.text().split("\n")
        data = {"first": {"value": header}, "keyword1": {"value": "\n".join(lines[:-1])},
                "keyword2": {"value": notice.issue}, "remark": {"value": replies.WECHAT_FOLLOW_FOOTER}}
        try:
            client.message.send_template(notice.chat, template_id, data, url=feed(notice.topics[0]))
        except WeChatClientException as exc:
            if exc.errcode == 43004:                       # the user unsubscribed from the account
                delivery.dropped += 1
                store.drop_chat(notice.channel, notice.chat)
            else:
                delivery.failed += 1
                log.warning("follow: a WeChat notice was not delivered (errcode %s)", exc.errcode)
            continue
        except requests.RequestException as exc:
            delivery.failed += 1
            log.warning("follow: WeChat's API cannot be reached (%s)", type(exc).__name__)
            continue
        delivery.sent += 1
        store.mark_sent(notice.user, notice.channel, notice.keys)
    return delivery


class Notifier:
    """Tell followers on every configured channel about the issues a write added or replaced."""

    def __init__(self, settings, matcher: TopicMatcher, store: FollowStore):
        self.settings, self.matcher, self.store = settings, matcher, store

    def snapshot(self) -> dict[str, str]:
        """Return the served issues (key -> content hash): take it before an ingest or a reindex."""
        return {row["key"]: row["content_hash"] for row in self.matcher.answerer.store.issues()}

    def plan(self, before: dict[str, str]) -> list[Notice]:
        store = self.matcher.answerer.refresh()[0]
        return plan(self.matcher, self.store, changed_issues(store, before))

    async def notify(self, before: dict[str, str], telegram_bot=None) -> Delivery:
        """Plan and send the notices of everything changed since ``before``; Telegram only with a bot."""
        notices = await asyncio.to_thread(self.plan, before)
        total = Delivery()
        if telegram_bot is not None:
            total = _add(total, await send_telegram(telegram_bot, self.store, notices))
        client = self._wechat_client() if any(n.channel == "wechat" for n in notices) else None
        if client is not None:
            total = _add(total, await asyncio.to_thread(send_wechat, client, self.settings.follow.wechat_template_id,
                                                        self.store, notices, lambda t: feed_url(self.settings, t)))
        return total

    def _wechat_client(self):
        """wechatpy's client when a template message can be sent (template id, app id and secret set), else None."""
        from bot.wechat import CustomerService         # here: the WeChat channel pulls in the web app
        cfg, template = self.settings.wechat, self.settings.follow.wechat_template_id
        secret = os.environ.get(cfg.app_secret_env, "")
        if not (template and cfg.app_id and secret):
            return None
        return CustomerService(cfg.app_id, secret, cfg.api_base_url)


def _add(a: Delivery, b: Delivery) -> Delivery:
    return Delivery(a.sent + b.sent, a.dropped + b.dropped, a.failed + b.failed)
