"""Index generations in the data directory: a ``current`` pointer swapped atomically, and a writer lock.

Layout::

    <data>/bulletins/          the corpus folder (files copied in by ingest; reindex reads it)
    <data>/index/gen-*/        complete index generations
    <data>/index/current       symlink to the generation being served
    <data>/index/previous      symlink to the generation served before it (kept for readers still on it)
    <data>/index/write.lock    held by the one writer (ingest / reindex)

Writers build a new generation beside the served one and swap ``current`` only when it is whole,
so readers never see a half-written index and a crash leaves the previous one served.

The corpus folder changes in the same step: an ingest stages the files it adds in the new
generation (``corpus/``) with a journal (``corpus.json``: files to add, files to remove). The swap
makes the journal the truth; ``settle`` then applies it to the corpus folder and deletes it. A kill
before the swap changes nothing; a kill after it is rolled forward by the next writer or start
(``ensure_index``), so the corpus folder and the served index always end up agreeing.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from index.errors import IndexBusy, IndexCorrupt, StorageError
from index import faults
from index.paths import CORPUS_DIR, CURRENT, INDEX_DIR, INDEX_FILES, MANIFEST_FILE, PREVIOUS

CORPUS_JOURNAL, CORPUS_STAGED = "corpus.json", "corpus"     # in a generation: what its swap does to the corpus


class Generations:
    """Find, create, swap and prune index generations under ``<data>/index``."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / INDEX_DIR
        self.corpus_dir = self.data_dir / CORPUS_DIR

    @property
    def pointer(self) -> Path:
        return self.root / CURRENT

    def current(self) -> Path | None:
        """Return the served generation directory, or None before the first build."""
        return self._target(self.pointer)

    def previous(self) -> Path | None:
        """Return the generation served before the current one (None if there is none)."""
        return self._target(self.root / PREVIOUS)

    def _target(self, link: Path) -> Path | None:
        try:
            target = os.readlink(link)
        except OSError:
            return None
        path = self.root / Path(target).name
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
        served = self.current()
        try:
            digests = json.loads((served / MANIFEST_FILE).read_text(encoding="utf-8")).get("files", {})
        except (OSError, ValueError):
            digests = {}                                 # IndexStore reports the missing manifest on open
        # each copy is checked against the served manifest's checksum as it is made (sha256sum of the copy):
        # a damaged served file is a clear error, never carried into the next generation
        jobs = [(name, subprocess.Popen(["sh", "-c", 'cp -p -- "$0" "$1" && sha256sum -b -- "$1"',
                                         str(served / name), str(target / name)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE))
                for name in INDEX_FILES if (served / name).is_file()]

        def wait() -> None:
            failed, damaged = [], []
            for name, proc in jobs:
                out, err = proc.communicate()
                if proc.returncode != 0:
                    failed.append((name, err.decode(errors="replace").strip()))
                elif name in digests and out.split(b" ", 1)[0].decode() != digests[name]:
                    damaged.append(name)
            if failed:                                   # no space, no permission: cp says which
                raise StorageError(f"无法复制正在服务的索引（{'; '.join(f'{n}: {e}' for n, e in failed)}）；"
                                   "正在服务的索引和语料未变（copying the served index failed）")
            if damaged:
                raise IndexCorrupt(f"正在服务的索引文件已损坏：{served.name}/{', '.join(damaged)}；"
                                   "请运行 bulletin-bot reindex（served index damaged）")
        return wait

    def stage_corpus(self, generation: Path, files: dict[str, Path], remove: list[str]) -> None:
        """Stage corpus changes in a new generation: ``files`` (corpus name -> source) to add, names to remove.

        Nothing in the corpus folder changes here; ``settle`` applies the journal once the generation is served.
        """
        staged = generation / CORPUS_STAGED
        staged.mkdir()
        for name, source in files.items():
            shutil.copyfile(source, staged / name)
            _fsync_file(staged / name)
            faults.point("ingest.stage-file")
        journal = generation / (CORPUS_JOURNAL + ".tmp")
        journal.write_text(json.dumps({"add": sorted(files), "remove": sorted(set(remove) - set(files))},
                                      ensure_ascii=False), encoding="utf-8")
        _fsync_file(journal)
        journal.replace(generation / CORPUS_JOURNAL)
        fsync_dir(generation)

    def settle(self) -> None:
        """Roll the served generation's corpus journal forward (idempotent; the caller holds the write lock)."""
        current = self.current()
        journal = current / CORPUS_JOURNAL if current is not None else None
        if journal is None or not journal.exists():
            return
        try:
            plan = json.loads(journal.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise IndexCorrupt(f"入库日志损坏：{journal}；请运行 bulletin-bot reindex（corpus journal damaged）") from None
        self.corpus_dir.mkdir(parents=True, exist_ok=True)
        for name in plan.get("add", []):
            name = Path(name).name                        # names written by stage_corpus; never a path
            tmp = self.corpus_dir / f".{name}.tmp"
            shutil.copyfile(current / CORPUS_STAGED / name, tmp)
            _fsync_file(tmp)
            tmp.replace(self.corpus_dir / name)
            faults.point("settle.add")
        for name in plan.get("remove", []):
            (self.corpus_dir / Path(name).name).unlink(missing_ok=True)
            faults.point("settle.remove")
        fsync_dir(self.corpus_dir)
        journal.unlink()
        shutil.rmtree(current / CORPUS_STAGED, ignore_errors=True)

    def pending(self) -> bool:
        """Tell whether the served generation still has corpus changes to apply (one stat)."""
        current = self.current()
        return current is not None and (current / CORPUS_JOURNAL).exists()

    def swap(self, path: Path) -> None:
        """Point ``current`` at ``path`` atomically (``previous`` at the one it replaces), apply its corpus
        journal, then prune old generations."""
        fsync_dir(path)
        served = self.current()
        if served is not None and served != path:
            self._link(PREVIOUS, served)
        faults.point("swap.before")
        self._link(CURRENT, path)
        faults.point("swap.after")
        self.settle()
        self.prune()

    def _link(self, name: str, target: Path) -> None:
        tmp = self.root / f".{name}-{os.getpid()}"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(target.name, tmp)
        os.replace(tmp, self.root / name)
        fsync_dir(self.root)

    def discard(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def recover(self) -> None:
        """After a crash: roll a swapped-in corpus journal forward and remove half-built generations
        (the caller holds the write lock, so no generation is being built)."""
        self.settle()
        self.prune()

    def prune(self) -> None:
        """Remove every generation but the served one and the one served before it (by the pointers,
        never by name or age: a half-built leftover of a killed writer is never kept)."""
        current = self.current()
        if current is None:
            return
        keep = {current, self.previous()}
        for gen in self.root.glob("gen-*"):
            if gen not in keep:
                shutil.rmtree(gen, ignore_errors=True)
                faults.point("prune.generation")
        for tmp in self.root.glob(".*-*"):               # pointer temporaries of a killed swap
            if tmp.is_symlink():
                tmp.unlink(missing_ok=True)

    @contextmanager
    def write_lock(self, wait: bool = False):
        """Hold the single-writer lock; raise IndexBusy at once unless ``wait``."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fh = open(self.root / "write.lock", "a")
        except OSError as exc:
            raise storage_error(exc, self.root) from None
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                raise IndexBusy("另一个入库或重建任务正在进行，请稍后再试（index is busy, retry later）") from None
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def storage_error(exc: OSError, where: Path) -> StorageError:
    """Return the one-line error for a data folder that cannot be written (read-only, disk full, ...)."""
    why = {errno.ENOSPC: "磁盘已满（disk full）", errno.EDQUOT: "磁盘配额已满（disk quota exceeded）",
           errno.EFBIG: "文件超过允许的大小（file too large）", errno.EROFS: "只读文件系统（read-only file system）",
           errno.EACCES: "没有写入权限（permission denied）", errno.EPERM: "没有写入权限（permission denied）"}
    return StorageError(f"数据目录无法写入：{where}：{why.get(exc.errno, exc.strerror or type(exc).__name__)}；"
                        "已写入的部分已撤销，正在服务的索引和语料未变")


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
