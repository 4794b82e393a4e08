"""Telegram-side text and state helpers: HTML pieces within the length limit, keyboards, rate limits."""
from __future__ import annotations

import html
import re
import time
from collections import defaultdict, deque

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import replies
from bot.results import Answer
from bot.engine import Article

MESSAGE_LIMIT = 4096               # Telegram's limit for one text message
SEARCH_PAGE_SIZE = 5
MAX_SOURCE_BUTTONS = 4


def _units(text: str) -> int:
    """Return the length Telegram counts: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def split_html(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Escape plain text for parse_mode HTML and cut it into messages of at most ``limit`` units, at line ends."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        line = html.escape(line, quote=False)
        while _units(line) > limit:                    # a single over-long line: cut between characters
            cut = limit
            while _units(line[:cut]) > limit or re.search(r"&[a-z]*$", line[:cut]):
                cut -= 1
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:cut])
            line = line[cut:]
        joined = f"{current}\n{line}" if current else line
        if _units(joined) > limit:
            pieces.append(current)
            current = line
        else:
            current = joined
    if current.strip() or not pieces:
        pieces.append(current)
    return [p for p in pieces if p.strip()] or [html.escape(text[:1] or " ")]


def answer_keyboard(query_id: int, answer: Answer) -> InlineKeyboardMarkup:
    """Return the buttons under an answer: one 原文 per cited article, then 👍 / 👎 for this logged question."""
    cited = [s for s in answer.cited if s.article_id][:MAX_SOURCE_BUTTONS]
    rows = []
    if cited:
        labels = ([replies.TG_SOURCE_BUTTON] if len(cited) == 1 else
                  [replies.TG_SOURCE_BUTTON_N.format(n=n) for n in range(1, len(cited) + 1)])
        rows.append([InlineKeyboardButton(label, callback_data=f"art:{s.article_id}")
                     for label, s in zip(labels, cited)])
    rows.append([InlineKeyboardButton(replies.TG_FEEDBACK_UP, callback_data=f"fb:{query_id}:1"),
                 InlineKeyboardButton(replies.TG_FEEDBACK_DOWN, callback_data=f"fb:{query_id}:-1")])
    if not answer.abstained:
        rows.append([InlineKeyboardButton(replies.FOLLOW_BUTTON, callback_data=f"fo:{query_id}")])
    return InlineKeyboardMarkup(rows)


def examples_keyboard() -> InlineKeyboardMarkup:
    """Return one button per example question; pressing it asks the question."""
    return InlineKeyboardMarkup([[InlineKeyboardButton(q, callback_data=f"ask:{i}")]
                                 for i, q in enumerate(replies.TG_EXAMPLES)])


def article_text(article: Article) -> str:
    """Return an article as shown by the 原文 button: issue date, unit, title, then the full body."""
    header = replies.TG_ARTICLE_HEADER.format(date=article.issue_date.isoformat(), unit=article.unit or "（未署名）",
                                              title=article.title)
    return f"{header}\n\n{article.body}"


def search_page(found: list[Article], query: str, page: int, key: str) -> tuple[str, InlineKeyboardMarkup | None]:
    """Return one page of search results as plain text and its paging buttons."""
    pages = max(1, -(-len(found) // SEARCH_PAGE_SIZE))
    page = min(max(page, 1), pages)
    start = (page - 1) * SEARCH_PAGE_SIZE
    lines = [replies.TG_SEARCH_HEADER.format(query=query, n=len(found), page=page, pages=pages)]
    lines += [replies.TG_SEARCH_LINE.format(n=n, date=a.issue_date.isoformat(), title=a.title, unit=a.unit or "未署名")
              for n, a in enumerate(found[start:start + SEARCH_PAGE_SIZE], start=start + 1)]
    buttons = []
    if page > 1:
        buttons.append(InlineKeyboardButton(replies.TG_PREV_PAGE, callback_data=f"s:{key}:{page - 1}"))
    if page < pages:
        buttons.append(InlineKeyboardButton(replies.TG_NEXT_PAGE, callback_data=f"s:{key}:{page + 1}"))
    return "\n".join(lines), InlineKeyboardMarkup([buttons]) if buttons else None


class QuestionLimiter:
    """Allow each user at most ``per_minute`` questions in any sliding minute (in memory only)."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._asked: dict[object, deque[float]] = defaultdict(deque)

    def allow(self, user_key: object, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        asked = self._asked[user_key]
        while asked and now - asked[0] >= 60:
            asked.popleft()
        if self.per_minute > 0 and len(asked) >= self.per_minute:
            return False
        asked.append(now)
        return True
