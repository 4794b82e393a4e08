"""Kill-anywhere harness: SIGKILL ingest, reindex and restore at every fault-injection point and check
that the corpus folder, the index (`bulletin-bot issues`) and the answers agree and nothing is lost.

    .venv/bin/python -m bot.measure.kill_anywhere [--limit N]

Each scenario is first run once with BULLETIN_BOT_FAULT_TRACE to list the points it passes
(index/faults.py); then, for each point, a fresh copy of the data directory is given to a CLI
process told to SIGKILL itself there (BULLETIN_BOT_KILL_AT). After the kill: `bulletin-bot issues`
(which rolls a swapped-in corpus journal forward), the corpus folder parsed file by file, and an
answer from a fresh Answerer must all describe the same issues with the same content, and that state
must be the one before the command or the one after it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

from index.faults import KILL_ENV, TRACE_ENV  # noqa: E402
from index.paths import CORPUS_DIR, VECTORS_DB

QUESTION = "市六院7月那次组织献血，一共献了多少毫升？"
TODAY = dt.date(2025, 9, 20)          # the day the question's "7月" is read against
OLD_FACT, NEW_FACT = "21200", "21300"


def cli(data_dir: Path, *args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", "--data-dir", str(data_dir), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def make_inputs(folder: Path) -> dict[str, Path]:
    """The files the scenarios ingest: 2025-07-15 again as .md with a changed number, and a new issue 2025-08-01."""
    text = (REPO / "corpus" / "bulletins" / "2025-07-15.txt").read_text(encoding="utf-8")
    replaced, new = folder / "replacement.md", folder / "new-issue.txt"
    replaced.write_text(text.replace(f"{OLD_FACT} 毫升", f"{NEW_FACT} 毫升"), encoding="utf-8")
    new.write_text(text.replace("2025 年 7 月 15 日", "2025 年 8 月 1 日").replace(f"{OLD_FACT} 毫升", "88888 毫升"),
                   encoding="utf-8")
    return {"replaced": replaced, "new": new}


def state(data_dir: Path, embedder, settings_for) -> dict:
    """Read the three views of one data directory and say whether they agree.

    Returns {"index": {key: hash}, "corpus": {key: hash}, "answer": fact, "agree": bool, "why": str}."""
    from bot.answer import Answerer
    from corpus.articles import load_issue
    from corpus.errors import BadBulletin
    from index.build import SUFFIXES
    from index.generations import Generations
    from index.store import issue_hashes
    listed = cli(data_dir, "issues")
    if listed.returncode != 0:
        return {"agree": False, "why": f"`issues` failed: {listed.stderr.strip()[-300:]}"}
    index = issue_hashes(Generations(data_dir).current())
    shown = set(re.findall(r"^(\d{4}-\d\d-\d\d)", listed.stdout, re.M))
    corpus: dict[str, str] = {}
    for file in sorted((data_dir / CORPUS_DIR).iterdir()):
        if file.suffix.lower() in SUFFIXES and not file.name.startswith("."):
            try:
                issue = load_issue(file, 50 << 20)
            except BadBulletin:
                continue
            if issue.key in corpus:
                return {"agree": False, "why": f"two corpus files for {issue.key}"}
            corpus[issue.key] = issue.content_hash
    text = Answerer(settings_for(data_dir), embedder, today=TODAY).answer(QUESTION).text
    fact = NEW_FACT if NEW_FACT in text else OLD_FACT if OLD_FACT in text else None
    why = []
    if shown != set(index):
        why.append(f"`issues` shows {sorted(shown ^ set(index))} differently from the served index")
    if corpus != index:
        why.append(f"corpus and index differ on {sorted(k for k in set(corpus) | set(index) if corpus.get(k) != index.get(k))}")
    return {"index": index, "corpus": corpus, "answer": fact, "agree": not why, "why": "; ".join(why)}


def scenarios(work: Path, template: Path, inputs: dict[str, Path]) -> dict[str, tuple[list[str], Path | None]]:
    """name -> (CLI arguments, archive to prepare or None)."""
    archive = work / "other-state.tar.gz"
    if not archive.exists():                          # a backup of another state: 2025-08-01 added
        other = work / "other-state"
        shutil.copytree(template, other, symlinks=True)
        assert cli(other, "ingest", str(inputs["new"])).returncode == 0
        assert cli(other, "backup", str(archive)).returncode == 0
        shutil.copy2(other / VECTORS_DB, template / VECTORS_DB)     # its vectors cached: kill runs stay quick
        shutil.rmtree(other)
    return {"ingest-new": ["ingest", str(inputs["new"])],
            "ingest-two": ["ingest", str(inputs["replaced"]), str(inputs["new"])],
            "ingest-replace": ["ingest", str(inputs["replaced"])],
            "reindex": ["reindex"],
            "restore": ["restore", "--force", str(archive)]}


def trace(work: Path, template: Path, args: list[str]) -> list[str]:
    case = work / "trace"
    shutil.rmtree(case, ignore_errors=True)
    shutil.copytree(template, case, symlinks=True)
    points = work / "points.txt"
    points.unlink(missing_ok=True)
    done = cli(case, *args, env={TRACE_ENV: str(points)})
    assert done.returncode == 0, done.stderr
    if args[0] == "ingest":                           # keep the new vectors: later kill runs need not embed
        shutil.copy2(case / VECTORS_DB, template / VECTORS_DB)
    shutil.rmtree(case)
    return points.read_text(encoding="utf-8").split()


def run(embedder, settings_for, template: Path, work: Path, limit: int | None = None,
        only: list[tuple[str, str]] | None = None, say=print) -> dict:
    """Kill each scenario at each of its points; return the figures (and each finding)."""
    inputs = make_inputs(work)
    plans = scenarios(work, template, inputs)
    before = state(template, embedder, settings_for)
    assert before["agree"], before["why"]
    cases = only or [(name, p) for name, (args) in plans.items() for p in trace(work, template, args)]
    cases = cases[:limit] if limit else cases
    figures = {"kill points": 0, "killed": 0, "lost issues": 0, "disagreements": 0, "findings": []}
    if before["answer"] != OLD_FACT:
        raise AssertionError(f"the answer before any kill does not hold {OLD_FACT}")
    for name, point in cases:
        case = work / "case"
        shutil.rmtree(case, ignore_errors=True)
        shutil.copytree(template, case, symlinks=True)
        started = time.perf_counter()
        proc = cli(case, *plans[name], env={KILL_ENV: point})
        figures["kill points"] += 1
        figures["killed"] += proc.returncode == -9
        after = state(case, embedder, settings_for)
        lost = sorted(set(before["index"]) - set(after.get("index", {})))
        figures["lost issues"] += len(lost)
        if not after["agree"]:
            figures["disagreements"] += 1
            figures["findings"].append(f"{name} killed at {point}: {after['why']}")
        elif (after["index"].get("2025-07-15") == before["index"]["2025-07-15"]) != (after["answer"] == OLD_FACT):
            figures["disagreements"] += 1
            figures["findings"].append(f"{name} killed at {point}: the answer says {after['answer']}, "
                                       "the index holds the other version")
        if lost:
            figures["findings"].append(f"{name} killed at {point}: lost {lost}")
        say(f"{name:15s} {point:28s} exit {proc.returncode:3d}  issues {len(after.get('index', {}))}  "
            f"answer {after.get('answer')}  {'agree' if after['agree'] else 'DISAGREE'}  "
            f"({time.perf_counter() - started:.0f} s)")
    shutil.rmtree(work / "case", ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="stop after this many kill points")
    args = parser.parse_args()
    from index.build import ensure_index
    from index.embedding import Embedder
    from bot.settings import Settings, replace

    def settings_for(data_dir: Path):
        return replace(Settings(), data={"dir": str(data_dir)})

    with tempfile.TemporaryDirectory(prefix="kill-anywhere-") as tmp:
        tmp = Path(tmp)
        embedder = Embedder(Settings().embedding)
        ensure_index(settings_for(tmp / "template"), embedder)
        started = time.perf_counter()
        figures = run(embedder, settings_for, tmp / "template", tmp, args.limit)
        print(f"kill points: {figures['kill points']} across ingest, reindex and restore "
              f"({figures['killed']} killed there) in {time.perf_counter() - started:.0f} s")
        print(f"lost issues: {figures['lost issues']}")
        print(f"disagreements between corpus, index (`issues`) and answers: {figures['disagreements']}")
        for line in figures["findings"]:
            print("  " + line)
        sys.exit(1 if figures["lost issues"] or figures["disagreements"] else 0)


if __name__ == "__main__":
    main()
