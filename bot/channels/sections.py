"""The settings sections a channel reads, bundled where it reads three or more; `serve` hands them out."""
from __future__ import annotations

from dataclasses import dataclass

from bot.settings import DataSettings, FollowSettings, TelegramSettings, WebSettings, WeChatSettings


@dataclass(frozen=True)
class WebSections:
    """What the ASGI app reads: [web] (page, API, server), [wechat] (its webhook), [follow] (feeds, follow replies)."""

    web: WebSettings
    wechat: WeChatSettings
    follow: FollowSettings


@dataclass(frozen=True)
class TelegramSections:
    """What the Telegram bot reads: [telegram], [data] (the upload limit), and [wechat] and [follow] for the
    notices an admin's upload sends on every channel."""

    telegram: TelegramSettings
    data: DataSettings
    wechat: WeChatSettings
    follow: FollowSettings
