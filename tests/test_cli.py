"""The command line: the ask --json contract, ingest reports, issues, eval, config errors."""
from __future__ import annotations

import json
import re
import subprocess
import sys

from click.testing import CliRunner

from bot.cli import cli
from tests.conftest import BULLETINS, DEV_SET, REPO


def run(data_dir, *args, input=None):
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "--today", "2025-09-20", *args],
                                input=input, catch_exceptions=False)
    return result


def test_ask_json_prints_one_object_with_sources(built_data_dir):
    result = run(built_data_dir, "ask", "--json", "-k", "3", "市六院7月那次组织献血，一共献了多少毫升？")
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert set(obj) == {"question", "answer", "abstained", "sources"}
    assert obj["abstained"] is False and "21200" in obj["answer"]
    assert 1 <= len(obj["sources"]) <= 3
    assert set(obj["sources"][0]) == {"title", "date", "unit", "text", "score"}
    assert obj["sources"][0]["date"] == "2025-07-15"


def test_ask_json_stdin_answers_one_line_per_question(built_data_dir):
    questions = "南阳东站到郑州东的高铁一天有几趟？\n\n西峡县小学生足球联赛最后哪个学校拿了冠军？\n"
    result = run(built_data_dir, "ask", "--json", "-", input=questions)
    objs = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [o["question"] for o in objs] == ["南阳东站到郑州东的高铁一天有几趟？", "西峡县小学生足球联赛最后哪个学校拿了冠军？"]
    assert objs[0]["abstained"] is True and objs[1]["abstained"] is False
    assert len(objs[1]["sources"]) == 5


def test_issues_lists_each_issue_with_article_count(built_data_dir):
    result = run(built_data_dir, "issues")
    assert result.exit_code == 0
    assert "2024-09-28 2024年第89期    8 篇" in result.stdout
    assert len(result.stdout.strip().splitlines()) == 5


def test_ingest_reports_skipped_and_rejected(data_dir, tmp_path):
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    result = run(data_dir, "ingest", str(BULLETINS / "2025-06-04.txt"), str(empty))
    assert "skipped   2025-06-04.txt" in result.stdout
    assert "rejected  empty.pdf" in result.stdout


def test_eval_prints_the_figures(built_data_dir, tmp_path):
    subset = tmp_path / "dev-subset.jsonl"
    subset.write_text("\n".join(DEV_SET.read_text(encoding="utf-8").splitlines()[::8]), encoding="utf-8")
    result = run(built_data_dir, "eval", str(subset))
    assert result.exit_code == 0
    assert "Recall@5" in result.stdout and "MRR@10" in result.stdout and "out-of-scope abstention" in result.stdout


def test_unknown_config_key_is_a_clean_error(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[answer]\nmax_sentence = 3\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "issues"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert "unknown key(s) in [answer]: max_sentence" in proc.stderr and "Traceback" not in proc.stderr


def test_bench_prints_cold_start_and_latency(built_data_dir):
    result = run(built_data_dir, "bench", "--rounds", "1", "--cold-runs", "1")
    assert result.exit_code == 0
    assert re.search(r"cold start to first answer: median \d+\.\d+ s", result.stdout)
    assert re.search(r"per-question latency: p50 \d+\.\d+ ms, p95 \d+\.\d+ ms", result.stdout)
