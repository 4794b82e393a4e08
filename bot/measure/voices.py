"""Ask a question set again the way residents type: traditional characters, a personal preamble, a
pinyin keyboard's slip. `bulletin-bot eval FILE --voices` prints the figures of each voice beside the
questions as written, so a loss on how people actually type shows up as a number.

Each rewrite is mechanical and the same for every question (nothing is written for one question):
- traditional: OpenCC s2t over the whole question;
- preamble: one of a few neutral openings (no place, time or topic) before the question;
- slip: one character of the question's first two-character content word replaced by the most common
  other character with the same pinyin and tone (西峡 -> 西辖), as a pinyin keyboard offers it.
"""
from __future__ import annotations

import zlib
from functools import lru_cache

from index.keywords import common_characters, query_terms, sound_of, syllables, word_frequency

PREAMBLES = (
    "你好，我想问个事儿，",
    "麻烦问一下，我不太会打字，说得不清楚别见怪：",
    "我平时不怎么看新闻，听邻居说起过，想再确认一下，",
)
COMMON_CHAR = 5000      # a character the segmenter has seen this often is one a keyboard offers early
VOICES = ("as written", "traditional", "preamble", "slip")


def traditional(question: str) -> str:
    return _s2t().convert(question)


@lru_cache(maxsize=1)
def _s2t():
    import opencc
    return opencc.OpenCC("s2t")


def preamble(question: str) -> str:
    return PREAMBLES[zlib.crc32(question.encode("utf-8")) % len(PREAMBLES)] + question


@lru_cache(maxsize=1)
def _by_sound() -> dict[str, list[str]]:
    """Pinyin with tone -> the common characters with it, commonest first."""
    found: dict[str, list[tuple[int, str]]] = {}
    for char, freq in common_characters(COMMON_CHAR).items():
        found.setdefault(syllables(char)[0], []).append((freq, char))
    return {key: [c for _, c in sorted(chars, reverse=True)] for key, chars in found.items()}


def _others(char: str) -> str | None:
    """The commonest other character with the same pinyin and tone as ``char``, or None."""
    return next((c for c in _by_sound().get(syllables(char)[0], ()) if c != char), None)


def slip(question: str) -> str:
    """Replace one character of the first two-character content word by a same-sounding one, when there is one."""
    for word in query_terms(question):
        if len(word) != 2 or not sound_of(word) or word not in question:
            continue
        for k in (1, 0):                  # the second character first: the first is more often typed right
            other = _others(word[k])
            if other and word_frequency(word[:k] + other + word[k + 1:]) == 0:
                return question.replace(word, word[:k] + other + word[k + 1:], 1)
    return question


REWRITE = {"as written": lambda q: q, "traditional": traditional, "preamble": preamble, "slip": slip}


def rewritten(rows: list[dict], voice: str) -> list[dict]:
    """The question set with every question rewritten in ``voice`` (gold evidence and facts unchanged)."""
    return [dict(row, q=REWRITE[voice](row["q"])) for row in rows]
