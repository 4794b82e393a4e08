"""Telling followers: the notices the engine planned after an ingest or a reindex, sent on each channel.

    before = engine.snapshot()            # the served issues, before the write
    ... engine.ingest / engine.reindex ...
    delivery = await Notifier(settings.wechat, settings.follow, engine).notify(before, telegram_bot)

Telegram notices go out through PTB, whose AIORateLimiter paces them; a chat that blocked the bot (403)
is dropped with its topics. WeChat notices are template messages through wechatpy.
"""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

import requests
from telegram.constants import ParseMode
from telegram.error import Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from wechatpy.exceptions import WeChatClientException

from bot import replies
from bot.channels.telegram_format import split_html
from bot.engine import Engine, Notice
from bot.settings import FollowSettings, WeChatSettings

log = logging.getLogger(__name__)
SEND_AT_ONCE = 30                # Telegram notices in flight at once (the rate limiter paces them further)
SEND_ATTEMPTS = 6                # tries per notice after a 429, a timeout or a network error


@dataclass
class Delivery:
    sent: int = 0
    dropped: int = 0            # chats that blocked the bot, forgotten
    failed: int = 0             # not delivered (not marked sent: a corrected issue would list them again)

    def line(self) -> str:
        return replies.FOLLOW_NOTIFIED.format(sent=self.sent, dropped=self.dropped, failed=self.failed)


async def send_telegram(bot, engine: Engine, notices: list[Notice]) -> Delivery:
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
                    await engine.io(engine.drop_chat, notice.channel, notice.chat)
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
        await engine.io(engine.mark_sent, notice.user, notice.channel, notice.keys)

    await asyncio.gather(*(one(n) for n in notices if n.channel == "telegram"))
    return delivery


def send_wechat(client, template_id: str, engine: Engine, notices: list[Notice]) -> Delivery:
    """Send WeChat notices as template messages (blocking: call it in a worker thread).

    The template's fields: first (the header), keyword1 (the articles with their citations), keyword2 (the
    issue date), remark (how to stop); the message opens the topic's feed.
    """
    delivery = Delivery()
    for notice in (n for n in notices if n.channel == "wechat"):
        header, *lines = notice.text().split("\n")
        data = {"first": {"value": header}, "keyword1": {"value": "\n".join(lines[:-1])},
                "keyword2": {"value": notice.issue}, "remark": {"value": replies.WECHAT_FOLLOW_FOOTER}}
        try:
            client.message.send_template(notice.chat, template_id, data, url=engine.feed_url(notice.topics[0]))
        except WeChatClientException as exc:
            if exc.errcode == 43004:                       # the user unsubscribed from the account
                delivery.dropped += 1
                engine.drop_chat(notice.channel, notice.chat)
            else:
                delivery.failed += 1
                log.warning("follow: a WeChat notice was not delivered (errcode %s)", exc.errcode)
            continue
        except requests.RequestException as exc:
            delivery.failed += 1
            log.warning("follow: WeChat's API cannot be reached (%s)", type(exc).__name__)
            continue
        delivery.sent += 1
        engine.mark_sent(notice.user, notice.channel, notice.keys)
    return delivery


class Notifier:
    """Tell followers on every configured channel about the issues a write added or replaced."""

    def __init__(self, wechat: WeChatSettings, follow: FollowSettings, engine: Engine):
        self.wechat, self.template_id, self.engine = wechat, follow.wechat_template_id, engine

    async def notify(self, before: dict[str, str], telegram_bot=None) -> Delivery:
        """Plan and send the notices of everything changed since ``before``; Telegram only with a bot."""
        engine = self.engine
        notices = await engine.io(engine.notices, before)
        total = Delivery()
        if telegram_bot is not None:
            total = _add(total, await send_telegram(telegram_bot, engine, notices))
        client = self._wechat_client() if any(n.channel == "wechat" for n in notices) else None
        if client is not None:
            total = _add(total, await engine.io(send_wechat, client, self.template_id, engine, notices))
        return total

    def _wechat_client(self):
        """wechatpy's client when a template message can be sent (template id, app id and secret set), else None."""
        from bot.channels.wechat import CustomerService         # here: the WeChat channel pulls in the web app
        cfg, template = self.wechat, self.template_id
        secret = os.environ.get(cfg.app_secret_env, "")
        if not (template and cfg.app_id and secret):
            return None
        return CustomerService(cfg.app_id, secret, cfg.api_base_url)


def _add(a: Delivery, b: Delivery) -> Delivery:
    return Delivery(a.sent + b.sent, a.dropped + b.dropped, a.failed + b.failed)
