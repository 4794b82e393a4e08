"""The Telegram channel: a python-telegram-bot Application over the answerer, by polling or webhook.

    build_application(settings, answerer, querylog, token) -> Application   (handlers wired, not started)
    run_telegram(settings, answerer, querylog, token)                        (async; runs until cancelled)

The callbacks live in ``bot.telegram_handlers``; text, keyboards and limits in ``bot.telegram_format``.
"""
from __future__ import annotations

import asyncio
import logging
import os
from urllib.parse import urlparse

from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import (AIORateLimiter, Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler,
                          MessageHandler, filters)

from bot import replies
from bot.answer import Answerer
from bot.querylog import QueryLog
from bot.telegram_handlers import Handlers
from errors import ConfigError
from settings import Settings

log = logging.getLogger(__name__)
MODES = ("polling", "webhook")


def quiet_library_logs() -> None:
    """Keep library debug logs out: PTB's print whole updates (user ids, names) and the token-bearing URL,
    httpx's INFO lines print every request URL, token included."""
    for name, level in (("telegram", logging.INFO), ("httpx", logging.WARNING), ("httpcore", logging.WARNING)):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < level:
            logger.setLevel(level)


async def _register_commands(app: Application) -> None:
    try:
        await app.bot.set_my_commands([BotCommand(c, d) for c, d in replies.TG_COMMANDS])
    except TelegramError as exc:           # the command menu is a convenience, not a reason to stop
        log.warning("could not register the command menu: %s", type(exc).__name__)


def build_application(settings: Settings, answerer: Answerer, querylog: QueryLog, token: str) -> Application:
    """Return the Application with every handler and the error handler added (not yet initialized)."""
    tg = settings.telegram
    if tg.mode not in MODES:
        raise ConfigError(f"config: [telegram] mode must be one of {', '.join(MODES)}, got {tg.mode!r}")
    quiet_library_logs()
    builder = (ApplicationBuilder().token(token).rate_limiter(AIORateLimiter())
               .concurrent_updates(True).post_init(_register_commands))
    if tg.base_url:
        builder = builder.base_url(tg.base_url)
    if tg.base_file_url:
        builder = builder.base_file_url(tg.base_file_url)
    app = builder.build()
    h = Handlers(settings, answerer, querylog)
    new_messages = filters.UpdateType.MESSAGE
    for command, callback in (("start", h.start), ("help", h.help), ("new", h.new_topic), ("search", h.search),
                              ("latest", h.latest), ("issues", h.issues), ("reindex", h.reindex),
                              ("stats", h.stats), ("unanswered", h.unanswered)):
        app.add_handler(CommandHandler(command, callback, filters=new_messages))
    app.add_handler(MessageHandler(new_messages & filters.TEXT & ~filters.COMMAND, h.text))
    app.add_handler(MessageHandler(new_messages & filters.Document.ALL, h.document))
    app.add_handler(MessageHandler(new_messages & filters.ChatType.PRIVATE & ~filters.TEXT & ~filters.COMMAND,
                                   h.not_text))
    for prefix, callback in (("ask", h.example_button), ("art", h.source_button), ("fb", h.feedback_button),
                             ("s", h.search_button)):
        app.add_handler(CallbackQueryHandler(callback, pattern=f"^{prefix}:"))
    app.add_error_handler(h.on_error)
    return app


async def run_telegram(settings: Settings, answerer: Answerer, querylog: QueryLog, token: str) -> None:
    """Start the bot (polling, or the webhook server with its secret_token) and run until cancelled."""
    tg = settings.telegram
    app = build_application(settings, answerer, querylog, token)
    secret = os.environ.get(tg.secret_token_env, "")
    if tg.mode == "webhook" and not (tg.webhook_url and secret):
        raise ConfigError(f"config: webhook mode needs [telegram] webhook_url and the env var {tg.secret_token_env}")
    async with app:                                       # initialize ... shutdown
        await app.start()
        if tg.mode == "webhook":
            await app.updater.start_webhook(
                listen=tg.webhook_listen, port=tg.webhook_port, url_path=urlparse(tg.webhook_url).path.lstrip("/"),
                webhook_url=tg.webhook_url, secret_token=secret, allowed_updates=Update.ALL_TYPES)
        else:
            await app.updater.start_polling(allowed_updates=Update.ALL_TYPES)
        log.info("telegram bot running (%s)", tg.mode)
        try:
            await asyncio.Event().wait()                  # until cancelled
        finally:
            await app.updater.stop()
            await app.stop()
