"""Latency benchmark: cold start to the first answer, then per-question latency in-process."""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

# Questions of every kind the bot meets (resident, staff, numeric, time, listing, off-topic).
SAMPLE_QUESTIONS = [
    "家里老人卧床，能约护士上门吗？",
    "哪些医院组织过献血？",
    "7月12日那天有哪些活动？",
    "镇平县家庭医生签约有多少人？",
    "唐河县气排球比赛谁拿了冠军？",
    "上个月有什么体育比赛？",
    "南阳市有多少家乡镇卫生院？",
    "西峡县八段锦进校园是在哪个学校？",
    "最近一期有哪些新闻？",
    "南阳到北京的火车票多少钱？",
]


def percentile(values: list[float], p: float) -> float:
    """Return the p-th percentile (nearest rank) of the values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def cold_start(data_dir: Path, config: str | None, question: str) -> float:
    """Return seconds from starting a new process to its first answer (index already built)."""
    cmd = [sys.executable, "-m", "bot", "--data-dir", str(data_dir)]
    if config:
        cmd += ["--config", config]
    start = time.perf_counter()
    subprocess.run(cmd + ["ask", "--json", question], check=True, capture_output=True)
    return time.perf_counter() - start


def latency(answerer, questions: list[str], rounds: int) -> list[float]:
    """Return per-question latencies in milliseconds over ``rounds`` passes (after one warm-up)."""
    answerer.answer(questions[0])
    times = []
    for q in tqdm(questions * rounds, desc="bench", unit="q"):
        start = time.perf_counter()
        answerer.answer(q)
        times.append((time.perf_counter() - start) * 1000)
    return times


def load_questions(path: Path | None) -> list[str]:
    if path is None:
        return SAMPLE_QUESTIONS
    return [json.loads(line)["q"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def report(cold: list[float], times: list[float]) -> list[str]:
    """Return the figures as printable lines."""
    return [f"cold start to first answer: median {statistics.median(cold):.2f} s, max {max(cold):.2f} s "
            f"over {len(cold)} runs (target <= 5 s)",
            f"per-question latency: p50 {percentile(times, 50):.1f} ms, p95 {percentile(times, 95):.1f} ms, "
            f"mean {statistics.mean(times):.1f} ms over {len(times)} questions (target <= 100 ms)"]
