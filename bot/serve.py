"""`bulletin-bot serve`: the Telegram bot and the ASGI app (web page, HTTP API, WeChat) in one process."""
from __future__ import annotations

import asyncio
import logging
import os

from bot.answer import Answerer
from bot.querylog import QueryLog, load_salt
from settings import Settings

log = logging.getLogger(__name__)


def make_querylog(settings: Settings) -> QueryLog:
    """Open the query log in the data directory with the configured salt."""
    return QueryLog(settings.data_dir, load_salt(settings.data_dir, settings.querylog.salt_env))


async def serve(settings: Settings, answerer: Answerer) -> None:
    """Run every enabled channel until cancelled (Ctrl-C)."""
    querylog = make_querylog(settings)
    runners = []
    token = os.environ.get(settings.telegram.token_env, "")
    if token:
        from bot.telegram import run_telegram
        runners.append(run_telegram(settings, answerer, querylog, token))
    else:
        log.warning("Telegram is off: env %s is not set", settings.telegram.token_env)
    if settings.web.enabled or settings.wechat.enabled:
        from bot.web import run_web
        runners.append(run_web(settings, answerer, querylog))
    if not runners:
        log.error("nothing to serve: enable [web] or [wechat], or set %s", settings.telegram.token_env)
        return
    await asyncio.gather(*runners)
