"""The answer workers: every channel's questions are answered here, ``[web] workers`` at a time.

    workers = 1   one thread in this process, answering with the engine's own answerer
    workers = N   N spawned processes, each with its own answerer (its encoder given cores / N threads)

Every worker serves the generation the pointer names. A watcher thread beside each answerer opens a new
generation (checksums included) as soon as the pointer moves, so a swap made by an ingest or a reindex (in
this process or another) is picked up by all of them without a question waiting for the checksums; the
answerer also checks the pointer before each question, in case the watcher has not seen it yet. A question
waits in an asyncio queue for a free worker; when its turn comes and its client has gone, it is dropped
without being computed. Nothing here blocks the event loop.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import multiprocessing
import os
import sys
import threading
import time
import weakref
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Awaitable, Callable

from bot.results import Answer
from bot.settings import Settings

log = logging.getLogger(__name__)

_ANSWERER = None                 # in a worker process: its answerer
READY_HOLD_S = 0.3               # warm(): how long a worker holds a readiness call


def cores() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:                                # not on Linux
        return max(1, os.cpu_count() or 1)


def worker_count(configured: int) -> int:
    """``[web] workers``: 0 means one per core."""
    return configured if configured > 0 else cores()


def watch(answerer, every_s: float) -> threading.Event:
    """Open each new generation off the question path: a daemon thread calls ``answerer.refresh()`` every
    ``every_s`` seconds (a question arriving meanwhile keeps the generation served). Set the returned
    event to stop it."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every_s):
            try:
                answerer.refresh()
            except Exception as exc:                      # logged; the served generation stays served
                log.warning("watcher: %s", getattr(exc, "user_message", exc))

    threading.Thread(target=run, name="generation-watcher", daemon=True).start()
    return stop


def _start_process(settings: Settings, today: dt.date | None, threads: int) -> None:
    """Load this worker process's answerer (its encoder limited to ``threads`` cores) and its watcher."""
    global _ANSWERER
    os.environ["OMP_NUM_THREADS"] = str(threads)
    from bot.answer import Answerer
    _ANSWERER = Answerer(settings, today=today)
    watch(_ANSWERER, settings.web.watch_s)
    torch = sys.modules.get("torch")          # loaded only by the torch backends (sentence-transformers)
    if torch is not None:
        torch.set_num_threads(threads)


def _answer_in_process(text: str, k: int | None) -> Answer:
    return _ANSWERER.answer(text, k=k)


def _ready() -> tuple[int, str | None]:
    """This worker's process id and the generation it serves (None before its first question)."""
    time.sleep(READY_HOLD_S)            # held, so the next call goes to another worker
    return os.getpid(), _ANSWERER.serving


def _refreshed() -> tuple[int, str | None]:
    _ANSWERER.refresh(wait=True)        # the generation the pointer names, opened (or already open)
    return _ready()


class AnswerPool:
    """Answer questions on ``workers`` workers without blocking the event loop."""

    def __init__(self, settings: Settings, workers: int, local_answer: Callable[[str, int | None], Answer],
                 today: dt.date | None = None):
        self.workers = max(1, workers)
        self._local = local_answer
        self._executor: Executor
        if self.workers == 1:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="answer")
        else:
            threads = max(1, cores() // self.workers)
            self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_start_process, initargs=(settings, today, threads))
        self._slots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # event loop -> its queue
        self.dropped = 0                                  # questions whose client had gone before their turn

    def warm(self, timeout_s: float = 600.0) -> int:
        """Start every worker process now and wait until each has loaded its answerer, so no question waits
        for a model to load; return how many are ready."""
        ready = len(self.serving(timeout_s)) if self.workers > 1 else 1
        log.info("%d answer worker processes ready", ready)
        return ready

    def serving(self, timeout_s: float = 600.0) -> dict[int, str | None]:
        """Each worker process's id and the index generation it serves, starting the processes if need be
        (an empty map with one worker: it is the engine's own answerer)."""
        return self._on_every_worker(_ready, timeout_s)

    def refresh(self, timeout_s: float = 600.0) -> dict[int, str | None]:
        """Wait until every worker serves the generation the pointer names now, and return what each serves.
        An ingest or a reindex calls this, so the issue it added is answered by whichever worker takes the
        next question: the watchers alone get there within ``[web] watch_s``, and a question arriving while
        a watcher opens the new generation is answered from the old one."""
        return self._on_every_worker(_refreshed, timeout_s)

    def _on_every_worker(self, call: Callable[[], tuple[int, str | None]], timeout_s: float) -> dict[int, str | None]:
        if self.workers == 1:
            return {}                   # the engine's own answerer: the engine refreshes it itself
        seen: dict[int, str | None] = {}
        deadline = time.monotonic() + timeout_s
        while len(seen) < self.workers and time.monotonic() < deadline:
            seen.update(f.result() for f in [self._executor.submit(call) for _ in range(self.workers)])
        return seen

    async def answer(self, text: str, k: int | None = None,
                     gone: Callable[[], Awaitable[bool]] | None = None) -> Answer | None:
        """Answer on a free worker; None, computing nothing, when ``gone()`` says the asker left meanwhile."""
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots.setdefault(loop, asyncio.Semaphore(self.workers))
        async with slots:
            if gone is not None and await gone():
                self.dropped += 1
                log.info("question dropped: its client went away before a worker was free")
                return None
            if self.workers == 1:
                return await loop.run_in_executor(self._executor, self._local, text, k)
            return await loop.run_in_executor(self._executor, _answer_in_process, text, k)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
