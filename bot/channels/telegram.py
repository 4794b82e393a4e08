"""The Telegram channel: a python-telegram-bot Application over the engine, by polling or webhook.

    build_application(sections, engine, token) -> Application   (handlers wired, not started)
    run_telegram(sections, engine, token, states)                (async; runs until cancelled)

The channel fails alone: while the Bot API cannot be reached it retries with back-off (one log line per
failure, ``states["telegram"] == "retrying"``) and the other channels keep serving; a token the Bot API
rejects is one error line and ``"failed"``, never an exception out of ``serve``.

The callbacks live in ``bot.telegram_handlers``; text, keyboards and limits in ``bot.telegram_format``.
"""
from __future__ import annotations

import asyncio
import logging
import os
from urllib.parse import urlparse

import httpx
from telegram import BotCommand, Update
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import (AIORateLimiter, Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler,
                          MessageHandler, filters)
from telegram.request import HTTPXRequest

from bot import replies
from bot.channels.sections import TelegramSections
from bot.channels.states import ChannelStates, backoff
from bot.channels.telegram_handlers import Handlers
from bot.engine import ConfigError, Engine
from bot.settings import TelegramSettings

log = logging.getLogger(__name__)
MODES = ("polling", "webhook")
CHANNEL = "telegram"
FIRST_RETRY_S = 1.0
OVERALL_PER_S = 25            # messages a second to all chats: under Telegram's 30 with the limiter's bursts
RETRIES_AFTER_429 = 2         # a "429 Too Many Requests" is retried after the time Telegram asks for


class _OneLine(logging.Filter):
    """PTB logs a network failure (polling, the last getUpdates at shutdown) and a polling task cancelled by a
    shutdown with its whole traceback; an operator needs one line: PTB's message and the error."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (TelegramError, asyncio.CancelledError, OSError, httpx.HTTPError)):
            record.msg, record.args = f"{record.getMessage()} ({type(exc).__name__}: {exc})", ()
            record.exc_info = record.exc_text = None
        return True


ONE_LINE = _OneLine()


def quiet_library_logs() -> None:
    """Keep library debug logs out: PTB's print whole updates (user ids, names) and the token-bearing URL,
    httpx's INFO lines print every request URL, token included. PTB's network errors get one line each."""
    for name, level in (("telegram", logging.INFO), ("httpx", logging.WARNING), ("httpcore", logging.WARNING)):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < level:
            logger.setLevel(level)
    # filters do not inherit: every PTB logger there is (they are made when PTB is imported), and the known ones
    names = {n for n in logging.root.manager.loggerDict if n == "telegram" or n.startswith("telegram.")}
    for name in sorted(names | {"telegram.ext", "telegram.ext.Updater", "telegram.ext.Application"}):
        logger = logging.getLogger(name)
        if ONE_LINE not in logger.filters:
            logger.addFilter(ONE_LINE)


async def _register_commands(app: Application) -> None:
    try:
        await app.bot.set_my_commands([BotCommand(c, d) for c, d in replies.TG_COMMANDS])
    except TelegramError as exc:           # the command menu is a convenience, not a reason to stop
        log.warning("could not register the command menu: %s", type(exc).__name__)


class _Link:
    """The Bot API link's state: one readable line when it breaks, one when it is back, the token never shown."""

    def __init__(self, states: ChannelStates, token: str, token_env: str):
        self.states, self.token, self.token_env = states, token, token_env

    def reason(self, exc: BaseException) -> str:
        return f"{type(exc).__name__}: {exc}".replace(self.token, "<token>")

    def lost(self, exc: BaseException, retry_in: float | None = None) -> None:
        """Log one line for a failed call to the Bot API and mark the channel retrying."""
        self.states.set(CHANNEL, "retrying")
        wait = f"retrying in {retry_in:g} s" if retry_in is not None else "PTB retries with back-off"
        log.warning("telegram: cannot reach the Bot API (%s); %s; the other channels keep serving",
                    self.reason(exc), wait)

    def reached(self, status: int) -> None:
        """Mark the channel running once a call reaches the Bot API again (401/404: the token was revoked)."""
        if status in (401, 404):
            self.rejected()
        elif self.states.get(CHANNEL) != "running" and status < 500:
            if self.states.get(CHANNEL) == "retrying":
                log.info("telegram: the Bot API is reachable again")
            self.states.set(CHANNEL, "running")

    def rejected(self) -> None:
        self.states.set(CHANNEL, "failed")
        log.error("telegram: the Bot API rejected the token in env %s (revoked or mistyped?); Telegram is off, "
                  "the other channels keep serving", self.token_env)


class _PollingRequest(HTTPXRequest):
    """getUpdates over HTTPX (one connection, as PTB's default) that tells the link each time a poll gets through."""

    def __init__(self, link: _Link):
        super().__init__(connection_pool_size=1)
        self.link = link

    async def do_request(self, *args, **kwargs) -> tuple[int, bytes]:
        status, payload = await super().do_request(*args, **kwargs)
        self.link.reached(status)
        return status, payload


def rate_limiter() -> AIORateLimiter:
    """PTB's limiter, kept under Telegram's 30 messages a second (its bursts included); a 429 is retried."""
    return AIORateLimiter(overall_max_rate=OVERALL_PER_S, max_retries=RETRIES_AFTER_429)


def notice_bot(tg: TelegramSettings, token: str):
    """Return a bot (not initialized) for sending follow notices outside `serve`, paced like the Application's."""
    from telegram.ext import ExtBot
    quiet_library_logs()
    kwargs = {k: v for k, v in (("base_url", tg.base_url), ("base_file_url", tg.base_file_url)) if v}
    return ExtBot(token, rate_limiter=rate_limiter(), **kwargs)


def build_application(sections: TelegramSections, engine: Engine, token: str, link: _Link | None = None) -> Application:
    """Return the Application with every handler and the error handler added (not yet initialized)."""
    tg = sections.telegram
    if tg.mode not in MODES:
        raise ConfigError(f"config: [telegram] mode must be one of {', '.join(MODES)}, got {tg.mode!r}")
    quiet_library_logs()
    builder = (ApplicationBuilder().token(token).rate_limiter(rate_limiter())
               .concurrent_updates(True).post_init(_register_commands))
    if link is not None:
        builder = builder.get_updates_request(_PollingRequest(link))
    if tg.base_url:
        builder = builder.base_url(tg.base_url)
    if tg.base_file_url:
        builder = builder.base_file_url(tg.base_file_url)
    app = builder.build()
    h = Handlers(sections, engine)
    new_messages = filters.UpdateType.MESSAGE
    for command, callback in (("start", h.start), ("help", h.help), ("new", h.new_topic), ("search", h.search),
                              ("latest", h.latest), ("issues", h.issues), ("reindex", h.reindex),
                              ("stats", h.stats), ("unanswered", h.unanswered), ("follow", h.following.follow),
                              ("following", h.following.list_following), ("unfollow", h.following.unfollow)):
        app.add_handler(CommandHandler(command, callback, filters=new_messages))
    app.add_handler(MessageHandler(new_messages & filters.TEXT & ~filters.COMMAND, h.text))
    app.add_handler(MessageHandler(new_messages & filters.Document.ALL, h.document))
    app.add_handler(MessageHandler(new_messages & filters.ChatType.PRIVATE & ~filters.TEXT & ~filters.COMMAND,
                                   h.not_text))
    for prefix, callback in (("ask", h.example_button), ("art", h.source_button), ("fb", h.feedback_button),
                             ("s", h.search_button)):
        app.add_handler(CallbackQueryHandler(callback, pattern=f"^{prefix}:"))
    app.add_handler(CallbackQueryHandler(h.following.follow_button, pattern=r"^fo:\d{1,18}$"))
    app.add_error_handler(h.on_error)
    return app


async def run_telegram(sections: TelegramSections, engine: Engine, token: str,
                       states: ChannelStates | None = None) -> None:
    """Start the bot (polling, or the webhook server with its secret_token) and run until cancelled.

    Returns (after one error line) if the Bot API rejects the token; retries while it cannot be reached.
    """
    tg = sections.telegram
    states = states if states is not None else ChannelStates()
    states.set(CHANNEL, "starting")
    link = _Link(states, token, tg.token_env)
    app = build_application(sections, engine, token, link)
    secret = os.environ.get(tg.secret_token_env, "")
    if tg.mode == "webhook" and not (tg.webhook_url and secret):
        raise ConfigError(f"config: webhook mode needs [telegram] webhook_url and the env var {tg.secret_token_env}")
    if not await _connect(app, link, tg.retry_max_s):
        return
    async with app:                                       # initialized above; shutdown on the way out
        await app.start()
        if tg.mode == "webhook":
            await app.updater.start_webhook(
                listen=tg.webhook_listen, port=tg.webhook_port, url_path=urlparse(tg.webhook_url).path.lstrip("/"),
                webhook_url=tg.webhook_url, secret_token=secret, allowed_updates=Update.ALL_TYPES,
                bootstrap_retries=-1)
        else:
            await app.updater.start_polling(allowed_updates=Update.ALL_TYPES, bootstrap_retries=-1,
                                            error_callback=link.lost)
        states.set(CHANNEL, "running")
        log.info("telegram bot running (%s)", tg.mode)
        try:
            await asyncio.Event().wait()                  # until cancelled
        finally:
            await app.updater.stop()
            await app.stop()


async def _connect(app: Application, link: _Link, retry_max_s: float) -> bool:
    """Initialize the Application (getMe), retrying with back-off while the Bot API cannot be reached.

    Return False, after one error line, if the token is rejected.
    """
    for wait in backoff(FIRST_RETRY_S, retry_max_s):
        try:
            await app.initialize()
            return True
        except InvalidToken:
            link.rejected()
            return False
        except NetworkError as exc:                       # TimedOut included: no route, DNS, refused, 5xx
            link.lost(exc, wait)
            await asyncio.sleep(wait)
    return False
