"""Fault injection for the kill-anywhere harness (bot/measure/kill_anywhere.py): a writer SIGKILLs itself at a named point.

    BULLETIN_BOT_KILL_AT=ingest.swap:1      kill at the first time the point ``ingest.swap`` is passed
    BULLETIN_BOT_FAULT_TRACE=/tmp/points    append "<point>:<n>" for every point passed (to enumerate them)

Both are unset in normal operation, where ``point()`` is a dictionary lookup and nothing else.
"""
from __future__ import annotations

import os
import signal
from collections import Counter

KILL_ENV, TRACE_ENV = "BULLETIN_BOT_KILL_AT", "BULLETIN_BOT_FAULT_TRACE"
_passed: Counter = Counter()


def point(name: str) -> None:
    """Mark a point where a crash must leave the data directory consistent; die here if asked to."""
    kill, trace = os.environ.get(KILL_ENV), os.environ.get(TRACE_ENV)
    if not (kill or trace):
        return
    _passed[name] += 1
    here = f"{name}:{_passed[name]}"
    if trace:
        with open(trace, "a", encoding="utf-8") as fh:
            fh.write(here + "\n")
    if kill == here:
        os.kill(os.getpid(), signal.SIGKILL)
