"""Index generations in the data directory: a ``current`` pointer swapped atomically, and a writer lock.

Layout::

    <data>/bulletins/          the corpus folder (files copied in by ingest; reindex reads it)
    <data>/index/gen-*/        complete index generations
    <data>/index/current       symlink to the generation being served
    <data>/index/write.lock    held by the one writer (ingest / reindex)

Writers build a new generation beside the served one and swap ``current`` only when it is whole,
so readers never see a half-written index and a crash leaves the previous one served.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from errors import IndexBusy

KEEP = 2      # generations kept: the served one and the one before it (readers may still hold it)


class Generations:
    """Find, create, swap and prune index generations under ``<data>/index``."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "index"
        self.corpus_dir = self.data_dir / "bulletins"

    @property
    def pointer(self) -> Path:
        return self.root / "current"

    def current(self) -> Path | None:
        """Return the served generation directory, or None before the first build."""
        try:
            target = os.readlink(self.pointer)
        except OSError:
            return None
        path = self.root / target
        return path if path.is_dir() else None

    def new(self) -> Path:
        """Return a fresh, empty generation directory."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"gen-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6:06d}"
        path.mkdir()
        return path

    def start_copy(self, target: Path) -> Callable[[], None]:
        """Start copying the served generation's files into ``target`` (a new, empty generation).

        The copies run in `cp` child processes, so they proceed while this process embeds (the
        encoders hold the GIL); call the returned function to wait for them (it raises if one failed).
        A served generation is never written and the caller holds the write lock, so its files are
        whole and still.
        """
        jobs = [(item.name, subprocess.Popen(["cp", "-p", "--", str(item), str(target / item.name)],
                                             stderr=subprocess.PIPE))
                for item in sorted(self.current().iterdir()) if item.is_file()]

        def wait() -> None:
            failed = [(name, proc.communicate()[1].decode(errors="replace").strip()) for name, proc in jobs
                      if proc.wait() != 0]
            if failed:
                raise OSError(f"copying the served index failed: {failed}")
        return wait

    def swap(self, path: Path) -> None:
        """Point ``current`` at ``path`` atomically, then prune old generations."""
        tmp = self.root / f".current-{os.getpid()}"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(path.name, tmp)
        os.replace(tmp, self.pointer)
        _fsync_dir(self.root)
        self.prune()

    def discard(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def prune(self) -> None:
        """Remove every generation but the served one and the one served before it."""
        current = self.current()
        if current is None:
            return
        older = sorted(p for p in self.root.glob("gen-*") if p.is_dir() and p.name < current.name)
        keep = {current, *older[-(KEEP - 1):]}
        for gen in self.root.glob("gen-*"):
            if gen not in keep:
                shutil.rmtree(gen, ignore_errors=True)

    @contextmanager
    def write_lock(self, wait: bool = False):
        """Hold the single-writer lock; raise IndexBusy at once unless ``wait``."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "write.lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                raise IndexBusy("另一个入库或重建任务正在进行，请稍后再试（index is busy, retry later）") from None
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
