"""Wording the bulletins don't use, made into wording they do: before anything else reads a question.

``normalize`` converts traditional characters to simplified ones with OpenCC (the bulletins are
printed in simplified Chinese: 鎮平縣家庭醫生 → 镇平县家庭医生) and fullwidth ASCII letters, digits and
signs to halfwidth (７月１２日 → 7月12日). Chinese punctuation (，。？) is left as it is.
"""
from __future__ import annotations

import threading

import opencc

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
