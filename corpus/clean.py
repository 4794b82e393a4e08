"""Repair the damage PDF extraction does to a bulletin's text.

Extracted bulletins arrive as printed lines: broken mid-sentence, padded with blank lines,
sprinkled with page markers ("—3—"), running headers, ``**bold**`` marks and spaces around
digits ("949 万人"). ``clean_text`` turns that into one paragraph per line.
"""
from __future__ import annotations

import re
import statistics
import unicodedata
from collections import Counter

# CJK ideographs plus the CJK / full-width punctuation that sits between them.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_PUNCT = "\u3000-\u303f\uff00-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65\u2014\u2018\u2019\u201c\u201d\u2026\u00b7"
_TIGHT = f"[{_CJK}{_CJK_PUNCT}]"
_TIGHT_OR_DIGIT = f"[{_CJK}{_CJK_PUNCT}0-9%]"
_SPACE_AFTER_CJK = re.compile(f"(?<={_TIGHT})[ \t\u00a0\u3000]+(?={_TIGHT_OR_DIGIT})")
_SPACE_BEFORE_CJK = re.compile(f"(?<={_TIGHT_OR_DIGIT})[ \t\u00a0\u3000]+(?={_TIGHT})")

_PAGE_MARKER = re.compile(r"^[\-—－–―─~]{1,3}\s*\d{1,3}\s*[\-—－–―─~]{1,3}$|^第\s*\d{1,3}\s*页(共\s*\d+\s*页)?$")
UNIT_LINE = re.compile(r"^[（(][^。！？；，]{2,40}[)）]$")
_SENTENCE_END = "。！？；!?;"
_CLOSERS = "”’」』）)】》"
_CONTINUES = "，、：:“‘（(《【—·-/+"
_MAX_HEADING_WIDTH = 80      # display columns: 40 CJK characters
_REPEATS_AS_HEADER = 3       # a short line seen this often is a running header
_MIN_LINES_FOR_WIDTH = 10    # fewer long lines than this tell nothing about the layout
_MAX_PASSES = 20             # clean_text repeats its pass until nothing changes, at most this often
_DATELINE = re.compile(r"^(\S*办公室)?\d{4}年\d{1,2}月\d{1,2}日$")


def clean_text(raw: str) -> str:
    """Return bulletin text as cleaned paragraphs separated by "\\n".

    Cleaning is repeated until it changes nothing, so cleaned text cleans to itself: a paragraph joined from
    a full-width line and a short one is wider than a printed line, and read again it would join the next.
    (The bundled bulletins clean in one pass.)
    """
    text = _clean_once(raw)
    for _ in range(_MAX_PASSES):
        again = _clean_once(text)
        if again == text:
            break
        text = again
    return text


def _clean_once(raw: str) -> str:
    lines = [_clean_line(line) for line in _split_lines(raw)]
    lines = [line for line in lines if line and not _PAGE_MARKER.match(line)]
    lines = _drop_running_headers(lines)
    return "\n".join(_join_paragraphs(lines))


def _split_lines(raw: str) -> list[str]:
    """Split raw text into printed lines, treating form feeds as line breaks."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    return text.replace("\u2028", "\n").replace("\u2029", "\n").split("\n")


def _clean_line(line: str) -> str:
    """Strip markup, stray spaces and zero-width characters from one printed line."""
    line = line.replace("\ufeff", "").replace("\u200b", "").replace("**", "")
    line = _SPACE_AFTER_CJK.sub("", line)
    line = _SPACE_BEFORE_CJK.sub("", line)
    return re.sub(r"[ \t\u00a0\u3000]{2,}", " ", line).strip()


def display_width(text: str) -> int:
    """Return how many columns text takes when printed (CJK counts double)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _drop_running_headers(lines: list[str]) -> list[str]:
    """Keep the first copy of a short line that repeats on every page, drop the rest."""
    counts = Counter(line for line in lines if display_width(line) <= _MAX_HEADING_WIDTH)
    repeated = {line for line, n in counts.items()
                if n >= _REPEATS_AS_HEADER and not UNIT_LINE.match(line)}
    seen: set[str] = set()
    kept = []
    for line in lines:
        if line in repeated and line in seen:
            continue
        seen.add(line)
        kept.append(line)
    return kept


def _heading_width(lines: list[str]) -> float:
    """Return the width below which a line without final punctuation is a heading."""
    widths = [display_width(line) for line in lines if display_width(line) >= 30]
    if len(widths) < _MIN_LINES_FOR_WIDTH:
        return _MAX_HEADING_WIDTH
    # Wrapped PDF text has a typical full-line width; a heading is clearly shorter.
    return min(0.75 * statistics.median(widths), _MAX_HEADING_WIDTH)


def _join_paragraphs(lines: list[str]) -> list[str]:
    """Join printed lines into paragraphs, keeping headings and unit lines apart."""
    limit = _heading_width(lines)
    paragraphs: list[str] = []
    current = ""
    for i, line in enumerate(lines):
        following = lines[i + 1] if i + 1 < len(lines) else None
        current += line
        if _ends_paragraph(current, line, following, limit):
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    return paragraphs


def _ends_paragraph(current: str, line: str, following: str | None, limit: float) -> bool:
    """Tell whether the paragraph built so far stops after this printed line."""
    if following is None or UNIT_LINE.match(following) or UNIT_LINE.match(current):
        return True
    tail = line.rstrip(_CLOSERS) or line
    if tail[-1] in _SENTENCE_END or _DATELINE.match(line):
        return True
    if line[-1] in _CONTINUES:
        return False
    # Wrapped lines run full width; a short one closes a heading or paragraph.
    return display_width(line) < limit
