"""Keyword side of retrieval: jieba with the corpus' user dictionary, terms for SQLite FTS5."""
from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache
from importlib import resources

import jieba

jieba.setLogLevel(logging.WARNING)
_INIT = threading.Lock()
_READY = False

# Words that say what kind of question it is, not what it is about.
STOPWORDS = frozenset("""
的 了 吗 呢 吧 啊 呀 么 嘛 哦 是 在 有 和 与 及 或 把 被 给 让 向 从 到 对 为 于 就 都 也 还 又 很 太 再
我 你 他 她 它 我们 你们 他们 咱 咱们 自己 大家 这 那 这个 那个 这些 那些 哪 哪个 哪些 哪里 哪儿 那儿 这儿
什么 怎么 怎样 怎么样 如何 为什么 多少 几 几个 几次 几天 几号 哪天 何时 啥 谁 多久 多长 是否 能 能不能
可以 可不可以 会 会不会 要 要不要 想 需要 应该 得 去 来 过 着 听说 来着 一下 一个 一共 总共 现在 目前
那次 这次 那场 这场 上 下 里 中 时候 什么时候 有没有 没有 不 行 行不行 吗？ 请问 知道 告诉 问 一 个
都有 都有什么 列一下 情况 具体 具体是 主要 哪几 哪些地方 搞 办 开 是不是 算 第几 第几个
""".split())

_TOKEN = re.compile(r"[\w\u4e00-\u9fff]+")


def _ensure_dictionary() -> None:
    global _READY
    with _INIT:
        if _READY:
            return
        path = resources.files("corpus").joinpath("userdict.txt")
        if path.is_file():
            with resources.as_file(path) as real:
                jieba.load_userdict(str(real))
        _READY = True


def tokenize(text: str) -> list[str]:
    """Cut text into search terms (jieba search mode), lower-cased, punctuation dropped."""
    _ensure_dictionary()
    terms = []
    for word in jieba.cut_for_search(text):
        word = word.strip().lower()
        if word and _TOKEN.fullmatch(word):
            terms.append(word)
    return terms


@lru_cache(maxsize=4096)
def query_terms(question: str) -> tuple[str, ...]:
    """Return the content terms of a question: unique, in order, stopwords and single digits dropped."""
    seen: dict[str, None] = {}
    for term in tokenize(question):
        if term in STOPWORDS or (len(term) == 1 and not "\u4e00" <= term <= "\u9fff"):
            continue
        seen.setdefault(term, None)
    return tuple(seen)


def fts_query(terms: tuple[str, ...]) -> str:
    """Build an FTS5 MATCH expression that ORs the quoted terms."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


_HAN_WORD = re.compile(r"[\u4e00-\u9fff]{2,4}")


def syllables(text: str) -> list[str]:
    """The pinyin of each character, with its tone as a digit (纹身 -> ['wen2', 'shen1'])."""
    from pypinyin import Style, lazy_pinyin
    return lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)


def sound_of(term: str) -> str | None:
    """The term's pinyin with tones (纹身 -> wen2 shen1) when it is a word of 2-4 Han characters, else None.

    Two words with one sound are the same word to a pinyin keyboard: a resident who types 纹身 or 签越 means
    what the bulletins print as 文身 or 签约.
    """
    return " ".join(syllables(term)) if _HAN_WORD.fullmatch(term) else None


def word_frequency(word: str) -> int:
    """How often the segmenter's dictionary (general Chinese) has the word; 0 for a word it does not know."""
    _ensure_dictionary()
    return int(jieba.dt.FREQ.get(word) or 0)


def common_characters(min_frequency: int) -> dict[str, int]:
    """The Han characters the segmenter's dictionary has as words at least ``min_frequency`` times."""
    _ensure_dictionary()
    return {w: f for w, f in jieba.dt.FREQ.items() if len(w) == 1 and "\u4e00" <= w <= "\u9fff" and f >= min_frequency}
