"""Back up and restore a data directory: the corpus folder, the query log (and its salt), the vector cache,
the followers (follows.db) and the served index.

A backup starts with ``backup.json``: a manifest of every member with its size and SHA-256. Restore
trusts nothing else in the archive. It reads the stream once, writes each member to a path it
computes itself (the archive's names are only looked up in a fixed table), checks each member's
size and digest, caps the unpacked size and the member count, checks the gzip CRC at the end, runs
``PRAGMA integrity_check`` on every SQLite file and the index manifest's checksums, and only then
swaps the staged folder in with one atomic exchange. A damaged or hostile archive is refused with
one line (``BadArchive``) and the target is left exactly as it was.
"""
from __future__ import annotations

import ctypes
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
import zlib
from pathlib import Path

from corpus.errors import BulletinBotError
from index.errors import BadArchive
from index import faults
from index.generations import Generations, fsync_dir
from index.store import IndexStore, issue_hashes, sha256_file
from index.paths import CURRENT, DB_FILE, INDEX_FILES, QUERYLOG_DB, QUERYLOG_SALT, SQLITE_FILES, VECTORS_DB

FORMAT = 2                       # 2: backup.json first, with every member's size and SHA-256
MANIFEST = "backup.json"
MAX_MEMBERS = 100_000
MAX_MANIFEST_BYTES = 16 << 20
MAX_EXPANSION = 25               # unpacked bytes per archive byte (the data compresses 1-4x; a gzip bomb 1000x)
MIN_UNPACKED_CAP = 64 << 20
SINGLE_FILES = {name: name for name in (*SQLITE_FILES, QUERYLOG_SALT)}
_CORPUS_NAME = re.compile(r"[\w\-][\w.\-]{0,199}", re.ASCII)



def _sqlite_copy(path: Path, folder: Path) -> Path:
    """Return a consistent copy of a live SQLite database (through its backup API) in ``folder``."""
    copy = folder / path.name
    src, dst = sqlite3.connect(path), sqlite3.connect(copy)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")       # one self-contained file, no -wal beside it
    finally:
        src.close()
        dst.close()
    return copy


def backup(data_dir: Path, target: Path) -> dict:
    """Write ``target`` (.tar.gz): backup.json, bulletins/, the served index, querylog.db (+ salt), vectors.db,
    follows.db (followers and their topics)."""
    data_dir, target = Path(data_dir), Path(target)
    gens = Generations(data_dir)
    if gens.current() is None:
        raise BulletinBotError(f"没有可备份的索引：{data_dir}（no index in the data directory）")
    with gens.write_lock(wait=True), tempfile.TemporaryDirectory() as tmp:   # no writer changes what we read
        gens.settle()                                    # a killed ingest's corpus changes first
        current = gens.current()
        members: dict[str, Path] = {}
        for file in sorted(gens.corpus_dir.glob("*")):
            if file.is_file() and not file.name.startswith(".") and _CORPUS_NAME.fullmatch(file.name):
                members[f"bulletins/{file.name}"] = file
        for name in INDEX_FILES:
            members[f"generation/{name}"] = current / name
        for name in SQLITE_FILES:
            if (data_dir / name).exists():
                members[name] = _sqlite_copy(data_dir / name, Path(tmp))
        if (data_dir / QUERYLOG_SALT).exists():
            members[QUERYLOG_SALT] = data_dir / QUERYLOG_SALT
        summary = {"format": FORMAT, "created": dt.datetime.now().isoformat(timespec="seconds"),
                   "generation": current.name,
                   "bulletins": [n.split("/", 1)[1] for n in members if n.startswith("bulletins/")],
                   "querylog": QUERYLOG_DB in members, "vectors": VECTORS_DB in members,
                   "salt": QUERYLOG_SALT in members,
                   "members": {n: {"size": p.stat().st_size, "sha256": sha256_file(p)} for n, p in members.items()}}
        partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
        try:
            with tarfile.open(partial, "w:gz") as tar:
                _add_bytes(tar, MANIFEST, json.dumps(summary, ensure_ascii=False, indent=2).encode("utf-8"))
                for name, path in members.items():
                    tar.add(path, arcname=name)
            os.replace(partial, target)                  # a half-written archive never carries the target's name
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return summary


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(dt.datetime.now().timestamp()), 0o644
    tar.addfile(info, io.BytesIO(data))


class _Capped(io.RawIOBase):
    """A reader that refuses to deliver more than ``cap`` bytes (the unpacked-size cap, headers included)."""

    def __init__(self, raw, cap: int):
        self.raw, self.cap, self.count = raw, cap, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(min(len(buffer), self.cap - self.count + 1))
        self.count += len(data)
        if self.count > self.cap:
            raise BadArchive(f"备份解压后超过上限 {self.cap} 字节，已拒绝（archive unpacks too large）")
        buffer[:len(data)] = data
        return len(data)


def _refuse(archive: Path, why: str) -> BadArchive:
    return BadArchive(f"备份文件损坏或不可信，已拒绝恢复，数据目录未改动：{archive.name}：{why}")


def _destination(name: str, staging: Path, generation: Path) -> Path:
    """Return where a member goes: computed here from a fixed table, never taken from the archive."""
    folder, _, leaf = name.partition("/")
    if folder == "bulletins" and _CORPUS_NAME.fullmatch(leaf):
        return staging / "bulletins" / leaf
    if folder == "generation" and leaf in INDEX_FILES:
        return generation / leaf
    if name in SINGLE_FILES:
        return staging / SINGLE_FILES[name]
    raise ValueError(f"unexpected member {name[:80]!r}")


def _read_manifest(tar: tarfile.TarFile) -> dict:
    first = tar.next()
    if first is None or first.name != MANIFEST or not first.isreg() or first.size > MAX_MANIFEST_BYTES:
        raise ValueError("backup.json missing or not first")
    summary = json.loads(tar.extractfile(first).read().decode("utf-8"))
    members = summary.get("members") if isinstance(summary, dict) else None
    if summary.get("format") != FORMAT or not isinstance(members, dict) or not 0 < len(members) <= MAX_MEMBERS:
        raise ValueError("backup.json has no member list (written by an older version?)")
    for name, entry in members.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("size"), int) and entry["size"] >= 0
                and isinstance(entry.get("sha256"), str) and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])):
            raise ValueError(f"bad manifest entry {name[:80]!r}")
    if not all(f"generation/{n}" in members for n in INDEX_FILES):
        raise ValueError("no index in the archive")
    return summary


def _unpack(archive: Path, staging: Path, generation: Path) -> dict:
    """Unpack and check every member into ``staging``; return the manifest."""
    size = archive.stat().st_size
    with open(archive, "rb") as raw, gzip.GzipFile(fileobj=raw) as gz:
        capped = _Capped(gz, MAX_MANIFEST_BYTES + 4096)
        with tarfile.open(fileobj=io.BufferedReader(capped, 1 << 16), mode="r|") as tar:
            summary = _read_manifest(tar)
            members = summary["members"]
            total = sum(m["size"] for m in members.values())
            cap = max(MAX_EXPANSION * size, MIN_UNPACKED_CAP)
            if total > cap:
                raise BadArchive(f"备份声明解压后 {total} 字节，超过上限 {cap} 字节，已拒绝（archive unpacks too large）")
            capped.cap = capped.count + total + 2048 * (len(members) + 8) + (1 << 16)   # data, headers, padding
            seen = set()
            while (member := tar.next()) is not None:     # (iterating the TarFile would repeat backup.json)
                entry = members.get(member.name)
                if entry is None or member.name in seen or not member.isreg() or member.size != entry["size"]:
                    raise ValueError(f"member not in the manifest or not as listed: {member.name[:80]!r}")
                seen.add(member.name)
                path = _destination(member.name, staging, generation)
                path.parent.mkdir(parents=True, exist_ok=True)
                digest, source = hashlib.sha256(), tar.extractfile(member)
                with open(path, "xb") as out:
                    for block in iter(lambda: source.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
                if digest.hexdigest() != entry["sha256"]:
                    raise ValueError(f"checksum mismatch: {member.name[:80]!r}")
                faults.point("restore.member")
            if seen != set(members):
                raise ValueError("members missing from the archive")
        while capped.read(1 << 20):                      # to the end: GzipFile checks the CRC and length there
            pass
    if not archive.stat().st_size == size:
        raise ValueError("archive changed while it was read")
    return summary


def _check_staged(staging: Path, generation: Path, identity: dict) -> None:
    """Check the SQLite files, the index (settings and checksums) and that every indexed issue has its file."""
    for db in [staging / n for n in SQLITE_FILES] + [generation / DB_FILE]:
        if db.exists():
            conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
            try:
                result = conn.execute("PRAGMA integrity_check").fetchall()
            except sqlite3.DatabaseError as exc:
                raise ValueError(f"{db.name}: {exc}") from None
            finally:
                conn.close()
            if result != [("ok",)]:
                raise ValueError(f"{db.name} fails PRAGMA integrity_check")
    IndexStore(generation, identity).close()             # index settings and checksums
    names = {p.stem for p in (staging / "bulletins").glob("*")} if (staging / "bulletins").exists() else set()
    missing = sorted(set(issue_hashes(generation)) - names)
    if missing:
        raise ValueError(f"indexed issues without their bulletin file: {', '.join(missing[:5])}")


def restore(archive: Path, data_dir: Path, identity: dict, force: bool = False) -> dict:
    """Restore an archive into ``data_dir``; an existing one is kept aside as <dir>.before-restore-<time>."""
    archive, data_dir = Path(archive), Path(data_dir)
    occupied = data_dir.exists() and any(data_dir.iterdir())
    if occupied and not force:
        raise BulletinBotError(f"数据目录非空：{data_dir}；确认覆盖请加 --force（data directory not empty）")
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # staged beside the target, under a name chosen here; the archive names nothing on disk
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=data_dir.parent))
    try:
        generation = Generations(staging).root / f"gen-{dt.datetime.now():%Y%m%d-%H%M%S}-restored"
        generation.mkdir(parents=True)
        try:
            summary = _unpack(archive, staging, generation)
            _check_staged(staging, generation, identity)
        except BulletinBotError as exc:
            if isinstance(exc, BadArchive):
                raise
            raise _refuse(archive, exc.user_message) from None
        except (tarfile.TarError, OSError, EOFError, ValueError, KeyError, TypeError, AttributeError,
                UnicodeDecodeError, zlib.error, gzip.BadGzipFile, sqlite3.Error) as exc:
            raise _refuse(archive, f"{type(exc).__name__}: {str(exc)[:160]}") from None
        if (staging / QUERYLOG_SALT).exists():
            os.chmod(staging / QUERYLOG_SALT, 0o600)
        os.symlink(generation.name, generation.parent / CURRENT)
        _fsync_tree(staging)
        faults.point("restore.staged")
        aside = data_dir.with_name(f"{data_dir.name}.before-restore-{dt.datetime.now():%Y%m%d-%H%M%S}")
        if occupied:
            _exchange(staging, data_dir)                 # one atomic step: the target is old or new, never neither
            faults.point("restore.exchanged")
            staging.rename(aside)                        # (the old data, now under the staging name)
        else:
            if data_dir.exists():
                data_dir.rmdir()
            staging.rename(data_dir)
        fsync_dir(data_dir.parent)
    except BaseException:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        raise
    return {**summary, "generation": generation.name,        # what was restored, not what the archive claims
            "bulletins": sorted(n.split("/", 1)[1] for n in summary["members"] if n.startswith("bulletins/")),
            "querylog": QUERYLOG_DB in summary["members"]}


def _exchange(a: Path, b: Path) -> None:
    """Swap two directories atomically (Linux renameat2 RENAME_EXCHANGE)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), 2) != 0:    # AT_FDCWD, RENAME_EXCHANGE
        err = ctypes.get_errno()
        raise OSError(err, f"cannot swap {a} and {b}: {os.strerror(err)}")


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb+") as fh:
                os.fsync(fh.fileno())
        fsync_dir(Path(folder))

