"""The Dockerfile's contract, checked without a Docker engine: lean context, non-root, index built at image
build (the same command run here the same way), data on a volume, a HEALTHCHECK that really probes /healthz."""
from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from bot.querylog import QueryLog
from tests.conftest import app_for, engine_for, REPO, settings_for
from tests.wechat_standin import free_port, serve_app

DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
IGNORED = [line.strip() for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
           if line.strip() and not line.startswith("#")]
BIN = Path(sys.executable).parent


def instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [(m[1].upper(), m[2].strip()) for m in re.finditer(r"^(\w+)\s+(.*)$", text, re.M)]


def last(keyword: str) -> str:
    return [args for kw, args in instructions() if kw == keyword][-1]


def index_of(predicate) -> int:
    return next(i for i, (kw, args) in enumerate(instructions()) if predicate(kw, args))


def ignored(path: str) -> bool:
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.removeprefix("**/")) or path.split("/")[0] == p
               for p in IGNORED)


def test_dockerignore_keeps_venv_data_salts_git_and_caches_out():
    for path in (".venv", "data", "data/querylog.salt", "querylog.salt", ".git", "bot/__pycache__",
                 ".pytest_cache", "bench-results"):
        assert ignored(path), path
    for kw, args in instructions():
        if kw == "COPY":
            for source in args.split()[:-1]:
                assert (REPO / source).exists() and not ignored(source), source


def test_runs_as_a_non_root_user_with_data_on_a_volume():
    user = last("USER")
    assert user not in ("root", "0") and index_of(lambda kw, a: kw == "USER") < index_of(lambda kw, a: kw == "CMD")
    data_dir = re.search(r"BULLETIN_BOT_DATA_DIR=(\S+)", DOCKERFILE)[1]
    assert json.loads(last("VOLUME")) == [data_dir]
    assert "pip install --no-cache-dir ." in DOCKERFILE and "-e ." not in DOCKERFILE


def test_the_index_is_built_at_image_build_by_a_command_that_works(built_data_dir, tmp_path):
    build = index_of(lambda kw, a: kw == "RUN" and a.startswith("bulletin-bot"))
    assert build < index_of(lambda kw, a: kw == "VOLUME")        # after VOLUME a RUN's files would be lost
    # the container config, made by the Dockerfile's own sed line
    sed = instructions()[index_of(lambda kw, a: kw == "RUN" and a.startswith("sed"))][1]
    config = tmp_path / "container.toml"
    subprocess.run(sed.replace("/app/container.toml", str(config)), shell=True, cwd=REPO, check=True)
    assert 'host = "0.0.0.0"' in config.read_text(encoding="utf-8")
    # the build-time command, as the image runs it: data folder from the env, any working directory
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy2(built_data_dir / "vectors.db", data / "vectors.db")        # cached vectors: a quick build
    argv = shlex.split(instructions()[build][1].replace("/app/container.toml", str(config)))
    env = {**os.environ, "BULLETIN_BOT_DATA_DIR": str(data), "PATH": f"{BIN}:{os.environ['PATH']}"}
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 5 and "building the index" in proc.stderr
    assert (data / "index" / "current").is_dir() and not (data / "querylog.salt").exists()


def test_healthcheck_passes_while_healthz_serves_and_fails_without_it(built_data_dir, answerer, tmp_path):
    argv = json.loads(last("HEALTHCHECK").split("CMD", 1)[1])
    assert "/healthz" in " ".join(argv)
    port = free_port()
    probe = [a.replace("127.0.0.1:8080", f"127.0.0.1:{port}") for a in argv]
    probe[0] = sys.executable
    assert subprocess.run(probe, capture_output=True, timeout=60).returncode != 0      # nothing listening
    app = app_for(settings_for(built_data_dir), engine_for(settings_for(built_data_dir), answerer, QueryLog(tmp_path / "log", b"s")))
    with serve_app(app, port=port):
        assert subprocess.run(probe, capture_output=True, timeout=60).returncode == 0
