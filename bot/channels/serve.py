"""`bulletin-bot serve`: the Telegram bot and the ASGI app (web page, HTTP API, WeChat) in one process, over
one engine and its answer workers."""
from __future__ import annotations

import asyncio
import logging
import os

from bot.channels.sections import TelegramSections, WebSections
from bot.channels.states import ChannelStates
from bot.engine import ConfigError, Engine
from bot.settings import Settings

log = logging.getLogger(__name__)


async def serve(settings: Settings, engine: Engine) -> None:
    """Run every enabled channel until cancelled (Ctrl-C); a channel that fails stops alone."""
    states = ChannelStates(telegram="off", web="off", wechat="off")
    runners = []
    token = os.environ.get(settings.telegram.token_env, "")
    if token:
        from bot.channels.telegram import run_telegram
        sections = TelegramSections(settings.telegram, settings.data, settings.wechat, settings.follow)
        runners.append(_alone("telegram", run_telegram(sections, engine, token, states), states))
    else:
        log.warning("Telegram is off: env %s is not set", settings.telegram.token_env)
    if settings.web.enabled or settings.wechat.enabled:
        from bot.channels.web import run_web
        runners.append(run_web(WebSections(settings.web, settings.wechat, settings.follow), engine, states))
    if not runners:
        log.error("nothing to serve: enable [web] or [wechat], or set %s", settings.telegram.token_env)
        return
    await asyncio.to_thread(engine.warm)          # the model and the answer workers loaded before the first question
    try:
        await asyncio.gather(*runners)
    finally:
        engine.close()


async def _alone(channel: str, runner, states: ChannelStates) -> None:
    """Run one channel; if it dies of something unexpected, log it once and let the others serve on."""
    try:
        await runner
    except ConfigError:
        raise                                      # a setting to fix: stop at start, say which
    except Exception:
        states.set(channel, "failed")
        log.exception("%s stopped; the other channels keep serving", channel)
