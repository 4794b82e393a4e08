"""Telegram callbacks for following a topic: /follow, /following, /unfollow, the 关注这个话题 button, and the
notices after an admin's upload or /reindex. Part of ``bot.telegram_handlers.Handlers`` (its ``following``)."""
from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from bot import replies
from bot.channels.notify import Notifier
from bot.engine import Engine
from bot.settings import FollowSettings, WeChatSettings

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
CHANNEL = "telegram"


class FollowHandlers:
    """The follow commands and notices over the engine, replying with the handlers' ``reply``."""

    def __init__(self, wechat: WeChatSettings, follow: FollowSettings, engine: Engine, reply):
        self.engine, self.reply = engine, reply
        self.notifier = Notifier(wechat, follow, engine)

    async def follow(self, update: Update, context: Context) -> None:
        """/follow 义诊 镇平: be told when a new issue has articles on this topic."""
        text = " ".join(context.args or [])
        if not text.strip():
            await self.reply(update, context, replies.FOLLOW_USAGE)
            return
        await self._follow(update, context, text)

    async def _follow(self, update: Update, context: Context, topic: str) -> None:
        user, chat = update.effective_user, update.effective_chat
        reply = await self.engine.io(self.engine.follow, CHANNEL, user.id, chat.id, topic)
        await self.reply(update, context, reply.text)

    async def list_following(self, update: Update, context: Context) -> None:
        """/following: the topics followed, numbered."""
        reply = await self.engine.io(self.engine.following, CHANNEL, update.effective_user.id)
        await self.reply(update, context, reply)

    async def unfollow(self, update: Update, context: Context) -> None:
        """/unfollow N: stop following the N-th topic of /following."""
        reply = await self.engine.io(self.engine.unfollow, CHANNEL, update.effective_user.id,
                                     " ".join(context.args or []))
        await self.reply(update, context, reply)

    async def follow_button(self, update: Update, context: Context) -> None:
        """关注这个话题 under an answer: follow what the logged question was about (whoever presses it)."""
        query_id = int(update.callback_query.data.split(":")[1])
        row = await self.engine.io(self.engine.logged_question, query_id)
        if row is None:
            await update.callback_query.answer(replies.TG_ARTICLE_GONE, show_alert=True)
            return
        await update.callback_query.answer()
        question, cited = row
        topic = await self.engine.io(self.engine.question_topic, question, cited)
        await self._follow(update, context, topic or question)

    async def notify(self, update: Update, context: Context, before: dict[str, str]) -> None:
        """Tell the followers of topics the new or replaced articles match; tell the admin how many were told."""
        delivery = await self.notifier.notify(before, context.bot)
        if delivery.sent or delivery.dropped or delivery.failed:
            log.info("follow: %d notices sent, %d blocked chats dropped, %d failed", delivery.sent,
                     delivery.dropped, delivery.failed)
            await self.reply(update, context, delivery.line())
