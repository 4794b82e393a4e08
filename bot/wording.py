"""Wording the bulletins don't use, made into wording they do: before anything else reads a question.

``normalize`` converts traditional characters to simplified ones with OpenCC (the bulletins are
printed in simplified Chinese: 鎮平縣家庭醫生 → 镇平县家庭医生) and fullwidth ASCII letters, digits and
signs to halfwidth (７月１２日 → 7月12日). Chinese punctuation (，。？) is left as it is.

``dated_only`` tells a dated question whose other words the bulletins never print ("7月9号有啥动静")
from one that names what happened: the first asks for every article of that day.
"""
from __future__ import annotations

import threading

import opencc

from bot.question import GENERIC, Question
from index.store import IndexStore

OPENCC_CONFIG = "t2s"      # traditional (any region's standard) -> simplified, character level

# U+FF01..U+FF5E are the fullwidth forms of U+0021..U+007E; U+3000 is the ideographic space.
_HALFWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_HALFWIDTH[0x3000] = 0x20
# ... except the fullwidth punctuation Chinese text is written with, which the rest of the bot reads as such.
for _keep in "，！？：；（）":
    _HALFWIDTH.pop(ord(_keep), None)

_converter: opencc.OpenCC | None = None
_load_lock = threading.Lock()
_convert_lock = threading.Lock()


def _opencc() -> opencc.OpenCC:
    """Return the one converter, loaded on first use (its dictionaries take a moment)."""
    global _converter
    if _converter is None:
        with _load_lock:
            if _converter is None:
                _converter = opencc.OpenCC(OPENCC_CONFIG)
    return _converter


def to_simplified(text: str) -> str:
    """Convert traditional characters to simplified; simplified text comes back unchanged."""
    if not text or text.isascii():
        return text
    converter = _opencc()
    with _convert_lock:         # one converter shared by every channel's threads
        return converter.convert(text)


def to_halfwidth(text: str) -> str:
    """Convert fullwidth ASCII letters, digits and signs (and the ideographic space) to halfwidth."""
    return text.translate(_HALFWIDTH)


def normalize(text: str) -> str:
    """Return the question in the bulletins' own script: simplified characters, halfwidth ASCII."""
    return to_halfwidth(to_simplified(text or ""))


def names_only_a_time(question: Question, unknown: frozenset[str] | set[str]) -> bool:
    """Tell whether a question names a day or period (the latest issue included) and nothing the bulletins
    print besides: its other terms are generic (活动, 市里) or ``unknown`` (no bulletin uses them)."""
    when = question.when
    return (when is not None and not when.vague
            and all(t in GENERIC or t in unknown for t in question.terms))


def dated_only(question: Question, store: IndexStore, unknown: frozenset[str] | None = None) -> bool:
    """Tell whether a question names a day or period and nothing the bulletins print besides.

    "7月9号有啥动静", "7月17日市里开了个什么会", "6月18日那天有啥事": its terms are all generic
    (活动, 市里) or words no bulletin uses (动静, 开了个). Such a question asks for every article of that
    date — ``Retriever.articles_on(question.when)`` — not for the one that best matches its words.
    ``unknown``: the terms no bulletin uses when already counted (``Weights.unknown``), else read from the store.
    """
    if question.when is None or question.when.latest_issue:
        return False
    if unknown is None:
        counts = store.term_document_counts(question.terms)
        unknown = frozenset(t for t in question.terms if not counts.get(t))
    return names_only_a_time(question, unknown)
