"""docs/RELIABILITY.md stays true: every test it names exists."""
from __future__ import annotations

import ast
import re

from tests.conftest import REPO

DOC = (REPO / "docs" / "RELIABILITY.md").read_text(encoding="utf-8")


def _tests_in(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.name.startswith("test_")}


def test_every_test_named_in_the_reliability_table_exists():
    named = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", DOC)
    assert len(named) >= 30
    for file, test in named:
        path = REPO / file
        assert path.exists(), file
        if test:
            assert test in _tests_in(path), f"{file}::{test}"


def test_every_table_row_names_a_test_and_a_result():
    rows = [line for line in DOC.splitlines() if line.startswith("| ") and not line.startswith("| fault")]
    assert len(rows) >= 30
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 3 and "tests/" in cells[1] and cells[2], row
