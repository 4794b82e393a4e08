"""Backup archives you can trust: hostile and damaged archives are refused with one line, nothing changes."""
from __future__ import annotations

import gzip
import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from bot.measure.archive_fuzz import fuzz, siblings, tree
from bot.querylog import load_salt
from corpus.errors import BulletinBotError
from index.archive import backup, restore
from index.build import index_identity
from index.generations import Generations
from tests.conftest import REPO, settings_for


def _identity(embedder, data_dir):
    return index_identity(settings_for(data_dir), embedder)


def _members(archive: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(archive, "r:gz") as tar:
        return [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers()]


def _write(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info = tarfile.TarInfo(info.name) if isinstance(info, str) else info
            if info.isfile():
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def _outside(root: Path, data_dir: Path) -> set[Path]:
    """Every path under root that is not inside the data folder or one of its restore siblings."""
    return {p for p in root.rglob("*") if not p.is_relative_to(data_dir)}


@pytest.fixture
def archive(data_dir, tmp_path) -> Path:
    load_salt(data_dir, "")                           # the query log's salt exists, as after a first question
    path = tmp_path / "bb.tar.gz"
    backup(data_dir, path)
    return path


@pytest.mark.parametrize("generation", ["../../escaped", "/tmp/bb-escaped-generation", None, 7])
def test_restore_never_follows_a_generation_path_from_the_archive(archive, embedder, tmp_path, generation):
    """issue 12 case 1: the generation directory is named by restore, never by backup.json."""
    members = _members(archive)
    info, data = members[0]
    summary = json.loads(data)
    if generation is None:
        summary.pop("generation")
    else:
        summary["generation"] = generation
    crafted = _write(tmp_path / "crafted.tar.gz", [(info, json.dumps(summary).encode())] + members[1:])
    target, before = tmp_path / "nest" / "restored", set(tmp_path.rglob("*"))
    restore(crafted, target, _identity(embedder, target))
    gens = Generations(target)
    assert gens.current() is not None and gens.current().parent == target / "index"
    assert all(p.is_relative_to(target) or p == target.parent for p in set(tmp_path.rglob("*")) - before)
    assert not Path("/tmp/bb-escaped-generation").exists()


@pytest.mark.parametrize("hostile", ["../escape.txt", "/tmp/bb-abs.txt", "bulletins/../../escape.txt",
                                     "generation/../../escape", "symlink", "hardlink", "unlisted", "duplicate",
                                     "old-format"])
def test_restore_refuses_hostile_members_and_writes_nothing_outside(archive, embedder, tmp_path, hostile):
    members = _members(archive)
    extra = tarfile.TarInfo(hostile)
    if hostile == "symlink":
        extra = tarfile.TarInfo("bulletins/2099-01-01.txt")
        extra.type, extra.linkname = tarfile.SYMTYPE, "/etc/passwd"
    elif hostile == "hardlink":
        extra = tarfile.TarInfo("bulletins/2099-01-01.txt")
        extra.type, extra.linkname = tarfile.LNKTYPE, "/etc/passwd"
    elif hostile == "unlisted":
        extra = tarfile.TarInfo("bulletins/2099-01-01.txt")
    elif hostile == "duplicate":
        extra = members[1][0]
    if hostile == "old-format":                       # what main wrote: no member list
        info, data = members[0]
        summary = {k: v for k, v in json.loads(data).items() if k != "members"}
        crafted = _write(tmp_path / "crafted.tar.gz", [(info, json.dumps(summary).encode())] + members[1:])
    else:
        crafted = _write(tmp_path / "crafted.tar.gz", members + [(extra, b"pwned")])
    target = tmp_path / "restored"
    with pytest.raises(BulletinBotError) as err:
        restore(crafted, target, _identity(embedder, target))
    assert "已拒绝" in err.value.user_message and "\n" not in err.value.user_message
    assert not target.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".restore-")]
    assert not Path("/tmp/bb-abs.txt").exists() and not (tmp_path.parent / "escape.txt").exists()


def _set_member(archive: Path, out: Path, name: str, data: bytes) -> Path:
    """Replace one member's bytes without updating the manifest (what damage in transit does)."""
    return _write(out, [(m, data if m.name == name else d) for m, d in _members(archive)])


@pytest.mark.parametrize("damage", ["bulletin", "vectors-db", "bomb", "truncated", "trailer"])
def test_restore_refuses_a_damaged_archive_and_changes_nothing(data_dir, archive, embedder, tmp_path, damage):
    """issue 12 case 2: damaged bulletins, a SQLite file failing integrity_check, a gzip bomb, a cut archive."""
    bad = tmp_path / "bad.tar.gz"
    if damage == "bulletin":
        text = (data_dir / "bulletins" / "2025-07-15.txt").read_bytes().replace("21200".encode(), b"21201")
        _set_member(archive, bad, "bulletins/2025-07-15.txt", text)
    elif damage == "vectors-db":
        raw = bytearray((dict((m.name, d) for m, d in _members(archive)))["vectors.db"])
        raw[len(raw) // 2: len(raw) // 2 + 64] = os.urandom(64)
        _set_member(archive, bad, "vectors.db", bytes(raw))
    elif damage == "bomb":                            # 300 MB of zeros declared in the manifest: a gzip bomb
        members = _members(archive)
        summary = json.loads(members[0][1])
        summary["members"]["bulletins/2099-01-01.txt"] = {"size": 300 << 20, "sha256": "0" * 64}
        with open(bad, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as gz, \
                tarfile.open(fileobj=gz, mode="w|") as tar:
            info = tarfile.TarInfo("backup.json")
            body = json.dumps(summary).encode()
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
            zeros = tarfile.TarInfo("bulletins/2099-01-01.txt")
            zeros.size = 300 << 20
            tar.addfile(zeros, io.BytesIO(bytes(300 << 20)))
    elif damage == "truncated":
        bad.write_bytes(archive.read_bytes()[: archive.stat().st_size * 2 // 3])
    else:                                             # the gzip CRC at the very end
        data = bytearray(archive.read_bytes())
        data[-6] ^= 0x10
        bad.write_bytes(bytes(data))
    target = tmp_path / "restored"
    import shutil
    shutil.copytree(data_dir, target, symlinks=True)
    before, around = tree(target), siblings(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "bot", "--data-dir", str(target), "restore", "--force", str(bad)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "备份" in proc.stderr and "Traceback" not in proc.stderr
    assert tree(target) == before and siblings(tmp_path) == around


def test_backup_carries_the_query_log_salt_and_restore_puts_it_back(data_dir, archive, embedder, tmp_path):
    target = tmp_path / "restored"
    restore(archive, target, _identity(embedder, target))
    assert (target / "querylog.salt").read_bytes() == (data_dir / "querylog.salt").read_bytes()
    assert (target / "querylog.salt").stat().st_mode & 0o077 == 0
    conn = sqlite3.connect(target / "vectors.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_bit_flips_across_a_backup_reproduce_it_or_are_refused(data_dir, archive, embedder, tmp_path):
    """A quick sample of bot/measure/archive_fuzz.py (which runs >= 200 flips)."""
    counts = fuzz(archive, data_dir, tmp_path / "fuzz", _identity(embedder, data_dir), flips=16, seed=3) \
        if (tmp_path / "fuzz").mkdir() is None else None
    assert counts["bad"] == 0, counts["findings"]
    assert counts["refused"] >= 8 and counts["reproduced"] + counts["refused"] == 16
