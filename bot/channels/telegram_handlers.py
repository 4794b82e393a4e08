"""Telegram callbacks: residents ask, staff search, admins upload and rebuild. One method per command."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import tempfile
import time
from pathlib import Path

from telegram import Message, ReplyParameters, Update
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot import replies
from bot.followup import topic_after, with_topic
from bot.channels.sections import TelegramSections
from bot.channels.telegram_follow import FollowHandlers
from bot.channels.telegram_format import (QuestionLimiter, answer_keyboard, article_text, examples_keyboard,
                                          search_page, split_html)
from bot.engine import UPLOAD_SUFFIXES, BulletinBotError, Engine, IndexBusy

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
CHANNEL = "telegram"
TYPING_EVERY_S = 4.5               # Telegram shows "typing…" for about 5 seconds
KEPT_SEARCHES = 20                 # search queries remembered per chat for the paging buttons
DOWNLOAD_TIMEOUT_S = 120           # a 20 MB bulletin over a slow link
GROUPS = (ChatType.GROUP, ChatType.SUPERGROUP)


class Handlers:
    """The bot's callbacks, sharing the engine and the [telegram] settings. Every blocking call goes through the
    engine (answers on its workers, the rest on its I/O threads): nothing blocks the event loop."""

    def __init__(self, sections: TelegramSections, engine: Engine):
        self.tg = sections.telegram
        self.max_file_mb = sections.data.max_file_mb
        self.engine = engine
        self.limiter = QuestionLimiter(self.tg.questions_per_minute)
        self.admins = {str(a) for a in self.tg.admins}
        self.following = FollowHandlers(sections.wechat, sections.follow, engine, self.reply)

    # -- helpers -------------------------------------------------------------------------------
    def is_admin(self, update: Update) -> bool:
        user = update.effective_user
        return user is not None and str(user.id) in self.admins

    async def send(self, context: Context, chat_id: int, text: str, markup=None,
                   reply_to: int | None = None) -> Message:
        """Send plain text as escaped HTML, split at Telegram's limit; buttons go under the last part."""
        pieces = split_html(text)
        sent = None
        for n, piece in enumerate(pieces, start=1):
            sent = await context.bot.send_message(
                chat_id, piece, parse_mode=ParseMode.HTML, reply_markup=markup if n == len(pieces) else None,
                reply_parameters=ReplyParameters(reply_to, allow_sending_without_reply=True)
                if reply_to and n == 1 else None)
        return sent

    async def reply(self, update: Update, context: Context, text: str, markup=None) -> Message:
        chat, message = update.effective_chat, update.effective_message
        reply_to = message.message_id if chat.type in GROUPS and message else None
        return await self.send(context, chat.id, text, markup, reply_to)

    async def _keep_typing(self, context: Context, chat_id: int) -> None:
        try:
            while True:
                await context.bot.send_chat_action(chat_id, ChatAction.TYPING)
                await asyncio.sleep(TYPING_EVERY_S)
        except TelegramError as exc:            # a lost typing indicator is not worth an error
            log.debug("typing indicator failed: %s", type(exc).__name__)

    # -- residents -----------------------------------------------------------------------------
    async def start(self, update: Update, context: Context) -> None:
        """Greet and offer example questions as buttons."""
        await self.reply(update, context, replies.TG_WELCOME, examples_keyboard())

    async def help(self, update: Update, context: Context) -> None:
        text = replies.TG_HELP + ("\n" + replies.TG_ADMIN_HELP if self.is_admin(update) else "")
        await self.reply(update, context, text)

    async def new_topic(self, update: Update, context: Context) -> None:
        """Forget the article follow-ups are read against."""
        context.chat_data.pop("topic", None)
        await self.reply(update, context, replies.TG_NEW_TOPIC)

    async def text(self, update: Update, context: Context) -> None:
        """Answer a text message (in groups only when mentioned or replied to)."""
        message = update.effective_message
        text = message.text or ""
        if update.effective_chat.type in GROUPS:
            text = self._addressed(message, context.bot.username, context.bot.id)
            if text is None:
                return
        await self.ask(update, context, text)

    @staticmethod
    def _addressed(message: Message, username: str, bot_id: int) -> str | None:
        """Return the text without the bot's @mention if the bot is addressed, else None."""
        text = message.text or ""
        mention = re.compile(re.escape(f"@{username}"), re.I)
        if mention.search(text):
            return mention.sub(" ", text).strip()
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
            return text
        return None

    async def ask(self, update: Update, context: Context, text: str) -> None:
        """Answer one question with citations, 原文 and feedback buttons; log it."""
        text = text.strip()
        if len(text) > self.tg.max_message_chars:
            await self.reply(update, context, replies.TG_TOO_LONG.format(n=len(text), limit=self.tg.max_message_chars))
            return
        if not self.limiter.allow(update.effective_user.id):
            await self.reply(update, context, replies.TG_RATE_LIMITED)
            return
        chat = update.effective_chat
        question = self._with_topic(context.chat_data, text)
        typing = asyncio.create_task(self._keep_typing(context, chat.id))
        try:
            asked = await self.engine.ask(question, channel=CHANNEL, user_id=update.effective_user.id,
                                          chat_type=chat.type, asked=text)
        finally:
            typing.cancel()
        answer = asked.answer
        context.chat_data["topic"] = topic_after(answer, context.chat_data.get("topic"))
        log.info("answered in %.0f ms (%s chat, abstained=%s, follow-up=%s)", asked.latency_ms, chat.type,
                 answer.abstained, question != text)
        await self.reply(update, context, answer.text, answer_keyboard(asked.query_id, answer))

    def _with_topic(self, chat_data: dict, text: str) -> str:
        """Read a short follow-up against the article the last answer cited, while that is fresh."""
        question, chat_data["topic"] = with_topic(chat_data.get("topic"), text, self.tg.context_minutes)
        return question

    async def not_text(self, update: Update, context: Context) -> None:
        """Tell a private sender that only text is read."""
        await self.reply(update, context, replies.TG_NOT_TEXT)

    # -- buttons -------------------------------------------------------------------------------
    async def example_button(self, update: Update, context: Context) -> None:
        await update.callback_query.answer()
        index = int(update.callback_query.data.split(":")[1])
        if 0 <= index < len(replies.TG_EXAMPLES):
            await self.ask(update, context, replies.TG_EXAMPLES[index])

    async def source_button(self, update: Update, context: Context) -> None:
        """Show the full cited article."""
        article_id = int(update.callback_query.data.split(":")[1])
        article = await self.engine.io(self.engine.article, article_id)
        if article is None:
            await update.callback_query.answer(replies.TG_ARTICLE_GONE, show_alert=True)
            return
        await update.callback_query.answer()
        await self.send(context, update.effective_chat.id, article_text(article))

    async def feedback_button(self, update: Update, context: Context) -> None:
        """Record 👍 / 👎 for the logged question: only the person who asked it counts (groups share buttons)."""
        _, query_id, value = update.callback_query.data.split(":")
        ok = await self.engine.io(self.engine.feedback, int(query_id), int(value), CHANNEL, update.effective_user.id)
        await update.callback_query.answer(replies.TG_FEEDBACK_THANKS if ok else replies.TG_FEEDBACK_UNKNOWN)

    async def search_button(self, update: Update, context: Context) -> None:
        """Show another page of a search, in the same message."""
        _, key, page = update.callback_query.data.split(":")
        query = context.chat_data.get("searches", {}).get(key)
        if query is None:
            await update.callback_query.answer(replies.TG_SEARCH_EXPIRED, show_alert=True)
            return
        await update.callback_query.answer()
        text, markup = search_page(await self.engine.io(self.engine.search, query), query, int(page), key)
        await update.callback_query.edit_message_text(split_html(text)[0], parse_mode=ParseMode.HTML,
                                                      reply_markup=markup)

    # -- staff ---------------------------------------------------------------------------------
    async def search(self, update: Update, context: Context) -> None:
        """/search 关键词: dated list of matching articles, paged."""
        query = " ".join(context.args or []).strip()
        if not query:
            await self.reply(update, context, replies.TG_SEARCH_USAGE)
            return
        found = await self.engine.io(self.engine.search, query)
        if not found:
            await self.reply(update, context, replies.TG_SEARCH_NONE.format(query=query))
            return
        key = hashlib.sha1(query.encode("utf-8")).hexdigest()[:10]
        searches = context.chat_data.setdefault("searches", {})
        searches.pop(key, None)
        searches[key] = query
        while len(searches) > KEPT_SEARCHES:
            searches.pop(next(iter(searches)))
        text, markup = search_page(found, query, 1, key)
        await self.reply(update, context, text, markup)

    async def latest(self, update: Update, context: Context) -> None:
        """/latest: the newest issue's article titles."""
        newest, articles = await self.engine.io(self.engine.latest)
        if newest is None:
            await self.reply(update, context, replies.TG_NO_ISSUES)
            return
        lines = [replies.TG_LATEST_HEADER.format(date=newest["date"], n=len(articles))]
        lines += [replies.TG_LATEST_LINE.format(n=n, title=a.title, unit=a.unit or "未署名")
                  for n, a in enumerate(articles, start=1)]
        await self.reply(update, context, "\n".join(lines))

    async def issues(self, update: Update, context: Context) -> None:
        """/issues: what is indexed."""
        issues = await self.engine.io(self.engine.issues)
        lines = [replies.TG_ISSUES_HEADER.format(n=len(issues))] if issues else [replies.TG_NO_ISSUES]
        lines += [replies.TG_ISSUES_LINE.format(date=i["date"], source=i["source_name"], articles=i["articles"])
                  for i in issues]
        await self.reply(update, context, "\n".join(lines))

    # -- admins --------------------------------------------------------------------------------
    async def refuse(self, update: Update, context: Context) -> bool:
        """Refuse a non-admin; return whether the sender was refused."""
        if self.is_admin(update):
            return False
        log.info("admin command refused (%s chat)", update.effective_chat.type)
        await self.reply(update, context, replies.TG_NOT_ADMIN)
        return True

    async def document(self, update: Update, context: Context) -> None:
        """Ingest a bulletin file an admin sends; anyone else gets a hint."""
        if not self.is_admin(update):
            if update.effective_chat.type == ChatType.PRIVATE:
                await self.reply(update, context, replies.TG_DOCUMENT_NOT_ADMIN)
            return
        doc = update.effective_message.document
        name = Path(doc.file_name or "bulletin.txt").name
        why = upload_name_problem(name)
        if why:
            await self.reply(update, context, replies.TG_UPLOAD_BAD_NAME.format(why=why))
            return
        if Path(name).suffix.lower() not in UPLOAD_SUFFIXES:
            await self.reply(update, context, replies.TG_UPLOAD_SUFFIX.format(name=name))
            return
        if doc.file_size and doc.file_size > self.max_file_mb * 1024 * 1024:
            await self.reply(update, context, replies.TG_UPLOAD_TOO_BIG.format(name=name, mb=self.max_file_mb))
            return
        await self.reply(update, context, replies.TG_UPLOAD_RECEIVED.format(name=name))
        with tempfile.TemporaryDirectory(prefix="tg-upload-") as folder:
            path = Path(folder) / name
            file = await context.bot.get_file(doc.file_id)
            await file.download_to_drive(path, read_timeout=DOWNLOAD_TIMEOUT_S)
            before = await self.engine.io(self.engine.snapshot)
            try:
                report = await self.engine.io(self.engine.ingest, [path])
            except IndexBusy:
                await self.reply(update, context, replies.TG_INDEX_BUSY)
                return
        log.info("upload ingested: %d added, %d replaced, %d rejected", len(report.added), len(report.replaced),
                 len(report.rejected))
        lines = ([replies.TG_INGEST_ADDED.format(item=i) for i in report.added]
                 + [replies.TG_INGEST_REPLACED.format(item=i) for i in report.replaced]
                 + [replies.TG_INGEST_SKIPPED.format(item=n, why=w) for n, w in report.skipped]
                 + [replies.TG_INGEST_REJECTED.format(item=n, why=w) for n, w in report.rejected])
        await self.reply(update, context, "\n".join(lines))
        if report.changed:
            await self.following.notify(update, context, before)

    async def reindex(self, update: Update, context: Context) -> None:
        """/reindex: rebuild from the corpus folder in a thread, editing one message with the progress."""
        if await self.refuse(update, context):
            return
        status = await self.reply(update, context, replies.TG_REINDEX_STARTED)
        loop = asyncio.get_running_loop()
        edits: list = []

        def on_issue(done: int, total: int, name: str) -> None:   # called in the worker thread
            text = replies.TG_REINDEX_PROGRESS.format(done=done, total=total, name=name)
            edits.append(asyncio.run_coroutine_threadsafe(_edit(status, text), loop))

        started = time.perf_counter()
        before = await self.engine.io(self.engine.snapshot)
        try:
            await self.engine.io(self.engine.reindex, wait=False, on_issue=on_issue)
        except IndexBusy:
            await _edit(status, replies.TG_INDEX_BUSY)
            return
        except BulletinBotError as exc:
            await _edit(status, replies.TG_REINDEX_FAILED.format(why=exc.user_message))
            return
        finally:
            await asyncio.gather(*(asyncio.wrap_future(f) for f in edits))
        issues = await self.engine.io(self.engine.issues)
        await _edit(status, replies.TG_REINDEX_DONE.format(issues=len(issues), articles=sum(i["articles"] for i in issues),
                                                           seconds=time.perf_counter() - started))
        await self.following.notify(update, context, before)

    async def stats(self, update: Update, context: Context) -> None:
        """/stats: questions per day and week, abstention rate, feedback, top questions."""
        if await self.refuse(update, context):
            return
        s = await self.engine.io(self.engine.stats)
        lines = [replies.TG_STATS.format(day=s["day"], week=s["week"], rate=s["abstention_rate"], up=s["up"],
                                         down=s["down"])]
        lines += [replies.TG_STATS_TOP.format(question=q, count=c) for q, c in s["top"]]
        lines.append(replies.FOLLOW_STATS.format(**s["follows"]))
        await self.reply(update, context, "\n".join(lines))

    async def unanswered(self, update: Update, context: Context) -> None:
        """/unanswered: the latest questions the bot abstained on."""
        if await self.refuse(update, context):
            return
        rows = await self.engine.io(self.engine.unanswered)
        lines = [replies.TG_UNANSWERED_HEADER] if rows else [replies.TG_UNANSWERED_NONE]
        lines += [replies.TG_UNANSWERED_LINE.format(time=r["time"], channel=r["channel"], question=r["question"])
                  for r in rows]
        await self.reply(update, context, "\n".join(lines))

    # -- errors --------------------------------------------------------------------------------
    async def on_error(self, update: object, context: Context) -> None:
        """Log the traceback; tell the user a short apology (or the error's own message); optionally tell admins."""
        error = context.error
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("telegram update %s failed: %s", update_id, type(error).__name__, exc_info=error)
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is not None:
            text = error.user_message if isinstance(error, BulletinBotError) else replies.TG_SORRY
            try:
                await context.bot.send_message(chat.id, text)
            except TelegramError as exc:
                log.warning("could not send the apology: %s", type(exc).__name__)
        if self.tg.notify_admins_on_error:
            for admin in self.admins:
                try:
                    await context.bot.send_message(int(admin), replies.TG_ADMIN_ERROR_NOTICE.format(
                        error=type(error).__name__))
                except (TelegramError, ValueError) as exc:
                    log.warning("could not notify an admin: %s", type(exc).__name__)


MAX_NAME_BYTES = 200               # below the file system's 255, with room for a temporary prefix


def upload_name_problem(name: str) -> str | None:
    """Say why an uploaded file's name cannot be stored as it is (too long, NUL or control characters), or None."""
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"太长（超过 {MAX_NAME_BYTES} 字节）"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name) or name in ("", ".", ".."):
        return "含有控制字符或为空"
    return None


async def _edit(message: Message, text: str) -> None:
    """Edit a status message, ignoring "message is not modified"."""
    try:
        await message.edit_text(split_html(text)[0], parse_mode=ParseMode.HTML)
    except BadRequest as exc:
        log.debug("status edit skipped: %s", exc)
