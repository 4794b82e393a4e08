"""What a question asks for (a count, a date, a place, a phone number ...) and whether a sentence shows it.

The patterns live in answer_types.toml (a data file, covered type by type in tests/test_reader.py);
this module only reads them.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

_NUM = r"(?:\d+(?:\.\d+)?|[一二两三四五六七八九十百千]+)"
_UNIT_ASK = re.compile(r"(?:多少|几)\s*(?P<unit>[\u4e00-\u9fff%]{1,2})")


@dataclass(frozen=True)
class AnswerType:
    name: str
    ask: tuple[re.Pattern, ...]
    show: tuple[re.Pattern, ...]
    strict: bool

    def asked_by(self, question: str) -> bool:
        return any(p.search(question) for p in self.ask)

    def shown_in(self, sentence: str) -> bool:
        return any(p.search(sentence) for p in self.show)


@dataclass(frozen=True)
class AnswerTypes:
    types: tuple[AnswerType, ...]
    units: tuple[str, ...]

    def asked(self, question: str) -> tuple[AnswerType, ...]:
        """Return the types of answer a question asks for."""
        return tuple(t for t in self.types if t.asked_by(question))

    def asked_unit(self, question: str) -> str | None:
        """Return the unit a count question names (多少毫升 -> 毫升, 几支队 -> 支), if any."""
        for m in _UNIT_ASK.finditer(question):
            tail = m.group("unit")
            for unit in self.units:             # longest first
                if tail.startswith(unit):
                    return unit
        return None

    @staticmethod
    @lru_cache(maxsize=64)
    def unit_pattern(unit: str) -> re.Pattern:
        return re.compile(rf"{_NUM}\s*(?:余|多)?\s*(?:万|千|百)?\s*{re.escape(unit)}")


@lru_cache(maxsize=1)
def answer_types() -> AnswerTypes:
    """Load answer_types.toml once."""
    data = tomllib.loads(resources.files("bot.reader").joinpath("answer_types.toml").read_text(encoding="utf-8"))
    units = tuple(sorted(data.pop("units", []), key=len, reverse=True))
    types = tuple(AnswerType(name, tuple(re.compile(p) for p in spec["ask"]),
                             tuple(re.compile(p) for p in spec["show"]), bool(spec.get("strict", False)))
                  for name, spec in data.items())
    return AnswerTypes(types, units)
