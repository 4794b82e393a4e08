"""`bulletin-bot serve`: the Telegram bot and the ASGI app (web page, HTTP API, WeChat) in one process."""
from __future__ import annotations

import asyncio
import logging
import os

from bot.answer import Answerer
from bot.channels import ChannelStates
from bot.querylog import QueryLog, load_salt
from errors import ConfigError
from settings import Settings

log = logging.getLogger(__name__)


def make_querylog(settings: Settings) -> QueryLog:
    """Open the query log in the data directory with the configured salt."""
    return QueryLog(settings.data_dir, load_salt(settings.data_dir, settings.querylog.salt_env))


async def serve(settings: Settings, answerer: Answerer) -> None:
    """Run every enabled channel until cancelled (Ctrl-C); a channel that fails stops alone."""
    querylog = make_querylog(settings)
    states = ChannelStates(telegram="off", web="off", wechat="off")
    runners = []
    token = os.environ.get(settings.telegram.token_env, "")
    if token:
        from bot.telegram import run_telegram
        runners.append(_alone("telegram", run_telegram(settings, answerer, querylog, token, states), states))
    else:
        log.warning("Telegram is off: env %s is not set", settings.telegram.token_env)
    if settings.web.enabled or settings.wechat.enabled:
        from bot.web import run_web
        runners.append(run_web(settings, answerer, querylog, states))
    if not runners:
        log.error("nothing to serve: enable [web] or [wechat], or set %s", settings.telegram.token_env)
        return
    await asyncio.gather(*runners)


async def _alone(channel: str, runner, states: ChannelStates) -> None:
    """Run one channel; if it dies of something unexpected, log it once and let the others serve on."""
    try:
        await runner
    except ConfigError:
        raise                                      # a setting to fix: stop at start, say which
    except Exception:
        states.set(channel, "failed")
        log.exception("%s stopped; the other channels keep serving", channel)
