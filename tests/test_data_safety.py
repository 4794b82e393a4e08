"""Issue 12: ingest, serving and the channels survive kills, damaged files and hostile input.

Each test names the case of issue 12 it proves; each failed on the code before the fix."""
from __future__ import annotations

import io
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from bot.measure.kill_anywhere import OLD_FACT, make_inputs, run as kill_anywhere, state
from bot import replies
from bot.querylog import QueryLog
from corpus import read
from corpus.errors import BadBulletin
from index.errors import StorageError
from index.build import index_identity, ingest_files
from index.generations import Generations
from index.store import FAISS_FILE, IndexStore
from index.vectors import VectorCache
from tests.conftest import app_for, engine_for, BULLETINS, REPO, TODAY, settings_for
from tests.test_wechat import OPENID, TOKEN, WeChatServers, text_xml
from tests.wechat_standin import serve_app

QUESTION = "市六院7月那次组织献血，一共献了多少毫升？"


def _cli(data_dir: Path, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bot", "--data-dir", str(data_dir), *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _error_lines(stderr: str) -> int:
    """Lines of stderr other than the embedding progress bar; the one error line is the last."""
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("embedding:")]
    assert lines and lines[-1].startswith("error: "), stderr
    return len(lines)


# -- case 3: the corpus folder changes in the same step as the index ----------------------------------
def test_a_kill_while_an_ingest_replaces_an_issue_leaves_corpus_and_index_agreeing(data_dir, embedder, tmp_path):
    """Kill the ingest the instant the corpus folder changes (polling it): the index must already be the new one,
    or be rolled forward at the next start; before the fix the corpus held the .md while the old text was served."""
    replacement = make_inputs(tmp_path)["replaced"]
    corpus = data_dir / "bulletins"
    proc = _cli(data_dir, "ingest", str(replacement))
    while proc.poll() is None and not (corpus / "2025-07-15.md").exists():
        pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = state(data_dir, embedder, settings_for)
    assert after["agree"], after["why"]
    assert len(after["index"]) == 5 and (after["answer"] == OLD_FACT) == (corpus / "2025-07-15.txt").exists()


@pytest.mark.slow
def test_kill_anywhere_sample(built_data_dir, embedder, tmp_path):
    """A sample of bot/measure/kill_anywhere.py (which kills at >= 50 points, in the slow suite too): inside save,
    after the swap before the corpus is settled, and between the two halves of a restore. 21 s: slow, so the
    fast suite stays under five minutes."""
    template = tmp_path / "template"
    shutil.copytree(built_data_dir, template, symlinks=True)
    figures = kill_anywhere(embedder, settings_for, template, tmp_path, only=[
        ("ingest-replace", "save.before-manifest:1"), ("ingest-two", "settle.add:1"),
        ("restore", "restore.exchanged:1")])
    assert figures["killed"] == 3
    assert (figures["lost issues"], figures["disagreements"]) == (0, 0), figures["findings"]


# -- case 4: pruning after a killed writer keeps what `current` pointed to -----------------------------
def test_pruning_after_a_killed_writer_keeps_the_generation_served_before(data_dir, embedder):
    gens = Generations(data_dir)
    served = gens.current()
    leftover = data_dir / "index" / f"{served.name}9"    # a killed writer's leftover: sorts after the served one
    leftover.mkdir()
    (leftover / "bulletins.db").write_bytes(b"half")
    proc = _cli(data_dir, "reindex")
    assert proc.wait(timeout=600) == 0, proc.communicate()
    kept = set((data_dir / "index").glob("gen-*"))
    assert kept == {gens.current(), served} and not leftover.exists()


# -- case 5: serving notices damage --------------------------------------------------------------------
@pytest.fixture
def served(data_dir, embedder, tmp_path):
    """The web app over a private data directory; yields (http client, data_dir)."""
    from bot.answer import Answerer
    answerer = Answerer(settings_for(data_dir), embedder, today=TODAY)
    with serve_app(app_for(settings_for(data_dir), engine_for(settings_for(data_dir), answerer, QueryLog(tmp_path / "log", b"s")))) as url, \
            httpx.Client(base_url=url, timeout=60) as http:
        assert http.get("/healthz").status_code == 200
        yield http, data_dir


def test_a_faiss_file_truncated_under_a_running_server_is_reported_and_ingest_refuses(served, tmp_path):
    http, data_dir = served
    faiss_file = Generations(data_dir).current() / FAISS_FILE
    os.truncate(faiss_file, faiss_file.stat().st_size // 2)
    health = http.get("/healthz")
    assert health.status_code == 503 and FAISS_FILE in health.json()["error"] and "reindex" in health.json()["error"]
    new = make_inputs(tmp_path)["new"]
    proc = _cli(data_dir, "ingest", str(new))
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 2 and "Traceback" not in err and _error_lines(err) == 1 and "reindex" in err
    assert not (data_dir / "bulletins" / "2025-08-01.txt").exists()


def test_a_flipped_byte_is_found_by_the_checksum_check_on_demand(served):
    http, data_dir = served
    faiss_file = Generations(data_dir).current() / FAISS_FILE
    data = bytearray(faiss_file.read_bytes())
    data[-100] ^= 0xFF                                # same size: only the checksum can tell
    faiss_file.write_bytes(bytes(data))
    assert http.get("/healthz?deep=1").status_code == 503


def test_a_truncated_sqlite_file_under_a_running_server_gives_503_not_500(served):
    http, data_dir = served
    os.truncate(Generations(data_dir).current() / "bulletins.db", 4096)
    for response in (http.get("/healthz"), http.get("/api/issues"), http.post("/api/ask", json={"question": QUESTION})):
        assert response.status_code == 503, (response.request.url, response.text)
        assert "reindex" in response.json()["error"]


# -- case 6: uploads parsed in a child process, much lower expansion cap -------------------------------
def _docx(path: Path, paragraphs: list[str]) -> Path:
    import docx
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    document.save(path)
    return path


def test_a_docx_expanding_past_the_xml_cap_is_refused_at_once(tmp_path):
    text = (BULLETINS / "2025-07-15.txt").read_text(encoding="utf-8").splitlines()
    path = _docx(tmp_path / "padded.docx", text)
    with zipfile.ZipFile(path) as z:                  # pad the body XML with 8 MB of empty paragraphs
        parts = {i.filename: z.read(i) for i in z.infolist()}
    body = parts["word/document.xml"]
    parts["word/document.xml"] = body.replace(b"</w:body>", b"<w:p/>" * ((8 << 20) // 6) + b"</w:body>")
    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    assert bomb.stat().st_size < 400_000
    started = time.perf_counter()
    with pytest.raises(BadBulletin) as err:
        read.read_text(bomb, 20 << 20)
    assert time.perf_counter() - started < 2 and "bomb.docx" in err.value.user_message


def test_a_docx_is_parsed_in_a_child_with_a_time_limit(tmp_path, monkeypatch):
    path = _docx(tmp_path / "ok.docx", (BULLETINS / "2025-07-15.txt").read_text(encoding="utf-8").splitlines())
    assert "21200" in read.read_text(path, 20 << 20)
    monkeypatch.setattr(read, "PARSE_TIMEOUT_S", 0.05)   # the child cannot even start in that time: it is stopped
    with pytest.raises(BadBulletin) as err:
        read.read_text(path, 20 << 20)
    assert "超时" in err.value.user_message and "ok.docx" in err.value.user_message


# -- case 7: WeChat inbound safety ---------------------------------------------------------------------
@pytest.fixture
def bare_wechat(monkeypatch):
    """A WeChat channel whose answers are given by the test (here: a bulletin sentence holding "]]>")."""
    from bot.channels.wechat import WeChatChannel
    from bot.settings import WeChatSettings
    answers = {}

    async def ask(question, user):
        return answers.get(question, "收到")

    channel = WeChatChannel(WeChatSettings(enabled=True, reply_budget_s=30.0), ask, token=TOKEN)
    app = Starlette(routes=[Route("/wechat", channel.endpoint, methods=["GET", "POST"])])
    with serve_app(app) as url:
        servers = WeChatServers(url, "/wechat", None, None, False)
        yield servers, answers
        servers.http.close()


def test_a_wechat_reply_holding_cdata_end_stays_well_formed(bare_wechat):
    servers, answers = bare_wechat
    answers["问"] = "第一句]]><Content>伪造</Content>第二句\x01"
    response = servers.post(text_xml("问", 7001))
    assert response.status_code == 200
    reply = ET.fromstring(response.text)                  # ill-formed XML raises here
    assert reply.findtext("Content") == "第一句]]><Content>伪造</Content>第二句"
    assert len(reply.findall("Content")) == 1


@pytest.mark.parametrize("xml", [
    text_xml("问", 7002).replace("<MsgId>7002</MsgId>", "<MsgId>abc</MsgId>"),
    text_xml("问", 7003).replace("<Content>", "<Content><a>1</a><b>2</b>").replace("</Content>", "</Content><Content>x</Content>"),
    text_xml("问", 7004).replace("<Content><![CDATA[问]]></Content>", "<Content>a</Content><Content>b</Content>"),
    text_xml("问", 7005).replace(f"<![CDATA[{OPENID}]]>", "<x>nested</x>"),
])
def test_malformed_signed_wechat_messages_get_400(bare_wechat, xml):
    servers, _ = bare_wechat
    response = servers.post(xml)
    assert response.status_code == 400 and "Traceback" not in response.text


def test_a_signed_wechat_url_replayed_with_another_body_is_refused(bare_wechat):
    servers, answers = bare_wechat
    answers["真"], answers["假"] = "真的回答", "不该回答"
    params = servers.params()
    body = text_xml("真", 7010)               # built once: its CreateTime is the second it was made
    assert servers.post(body, params).status_code == 200
    assert servers.post(body, params).status_code == 200      # WeChat's own retry: the same body
    replay = servers.post(text_xml("假", 7011), params)
    assert replay.status_code == 403 and "不该回答" not in replay.text


# -- case 8: only a corrupt vector cache is set aside ---------------------------------------------------
def test_an_unopenable_vector_cache_is_one_clear_error_and_is_not_renamed(tmp_path):
    cache = tmp_path / "vectors.db"
    cache.mkdir()                                      # cannot be opened as a database, but is not damaged data
    (cache / "keep").write_text("x")
    with pytest.raises(StorageError) as err:
        VectorCache(cache)
    assert "vectors.db" in err.value.user_message and "\n" not in err.value.user_message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors.db"] and (cache / "keep").exists()


def test_disk_full_during_ingest_is_one_line_and_changes_nothing(data_dir, tmp_path):
    new = make_inputs(tmp_path)["new"]
    served, corpus = Generations(data_dir).current(), sorted(os.listdir(data_dir / "bulletins"))

    def small_disk():                                  # writes past 64 KB fail with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))
    proc = _cli(data_dir, "ingest", str(new), preexec_fn=small_disk)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 2 and _error_lines(err) == 1 and "Traceback" not in err, err
    assert "数据目录" in err or "向量缓存" in err
    assert Generations(data_dir).current() == served and sorted(os.listdir(data_dir / "bulletins")) == corpus
    assert sorted(p.name for p in (data_dir / "index").glob("gen-*")) == sorted(
        p.name for p in (data_dir / "index").glob("gen-*") if p == served or p == Generations(data_dir).previous())


# -- case 9: upload names that cannot be stored get a reason -------------------------------------------
@pytest.mark.parametrize("name", ["长" * 100 + ".txt", "bad\x00name.txt"])
def test_upload_names_too_long_or_with_nul_get_a_reason(data_dir, embedder, tmp_path, name):
    from bot.answer import Answerer
    from tests.test_telegram import ADMIN, shown, telegram_bot
    answerer = Answerer(settings_for(data_dir), embedder, today=TODAY)
    content = (BULLETINS / "2025-07-15.txt").read_bytes()
    with telegram_bot(data_dir, answerer, QueryLog(tmp_path / "log", b"s")) as api:
        doc = api.add_file("long", name, content)
        mark = api.mark()
        api.message(ADMIN, None, document=doc)
        [reply] = api.wait_for("sendMessage", lambda p: p["chat_id"] == ADMIN["id"], after=mark, timeout=120)
    assert shown(reply).startswith("无法收录这个文件：文件名") and shown(reply) != replies.TG_SORRY


# -- the full harnesses (minutes): `pytest -m slow` ---------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("harness", ["archive_fuzz", "kill_anywhere"])
def test_full_harness(harness):
    proc = subprocess.run([sys.executable, "-m", f"bot.measure.{harness}"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
