"""The layout holds: arrows point one way (bot -> index -> corpus), channels and the CLI use only the engine,
no import circles, every data-folder file name spelt once."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("bot", "index", "corpus")
DATA_FILES = ("vectors.db", "querylog.db", "querylog.salt", "follows.db", "bulletins.db", "vectors.faiss")
# what a channel (and the command line) may import from the project: the engine and their own formatting
CHANNEL_MAY_IMPORT = ("bot.engine", "bot.settings", "bot.replies", "bot.results", "bot.followup", "bot.channels")
CLI_MAY_ALSO_IMPORT = ("bot.measure", "bot.reader.fit")
# what the engine owns: a channel never reaches for it
ENGINE_PARTS = {"store", "embedder", "answerer", "querylog", "follows", "matcher", "data_dir"}


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def imports_of(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports anywhere in it (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and known[name].name != "__init__.py":
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(path, known) - {name} for name, path in known.items()}


def test_no_top_level_settings_or_errors_modules():
    assert not (REPO / "settings.py").exists() and not (REPO / "errors.py").exists()
    assert not any(name.split(".")[0] in ("settings", "errors") for name in modules())


def test_arrows_point_one_way_bot_index_corpus():
    rank = {"corpus": 0, "index": 1, "bot": 2}
    wrong = [(a, b) for a, deps in graph().items() for b in deps if rank[b.split(".")[0]] > rank[a.split(".")[0]]]
    assert wrong == []


def test_channels_and_the_cli_import_only_the_engine():
    wrong = []
    for name, deps in graph().items():
        if name.startswith("bot.channels"):
            allowed = CHANNEL_MAY_IMPORT
        elif name == "bot.cli":
            allowed = CHANNEL_MAY_IMPORT + CLI_MAY_ALSO_IMPORT
        else:
            continue
        wrong += [(name, d) for d in deps if not d.startswith(allowed)]
    assert wrong == []


def test_channels_never_reach_into_the_engine_for_its_store_embedder_or_paths():
    wrong = []
    for path in sorted((REPO / "bot" / "channels").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ENGINE_PARTS:
                wrong.append(f"{path.name}:{node.lineno} .{node.attr}")
    assert wrong == []


def test_no_import_circles():
    deps = graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(deps[node]):
            if state.get(nxt) == 1:
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for start in sorted(deps):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def test_every_data_folder_file_name_is_spelt_once():
    spelt: dict[str, list[str]] = {}
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in DATA_FILES:
                spelt.setdefault(node.value, []).append(name)
    assert {file: where for file, where in spelt.items() if len(where) > 1} == {}
    assert all(len(where) == 1 for where in spelt.values()) and set(spelt) == set(DATA_FILES)


def names_in(annotation: ast.expr | None) -> set[str]:
    """The names an annotation spells (inside ``X | None``, ``Optional[X]`` and quoted annotations too)."""
    found = set()
    for node in ast.walk(annotation) if annotation is not None else ():
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                found |= names_in(ast.parse(node.value, mode="eval").body)
            except SyntaxError:
                pass
    return found


def test_channels_and_following_receive_only_their_settings_sections():
    """Only `serve` (the composition root) takes the whole ``Settings``; every other function or method of
    bot/channels/ and bot/follow/ receives the sections it reads."""
    wrong = []
    for path in sorted((REPO / "bot" / "channels").glob("*.py")) + sorted((REPO / "bot" / "follow").glob("*.py")):
        where = path.relative_to(REPO).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if (where, node.name) == ("bot/channels/serve.py", "serve"):
                continue
            a = node.args
            params = a.posonlyargs + a.args + a.kwonlyargs + [p for p in (a.vararg, a.kwarg) if p is not None]
            wrong += [f"{where}:{node.lineno} {node.name}({p.arg})" for p in params
                      if "Settings" in names_in(p.annotation)]
    assert wrong == []
