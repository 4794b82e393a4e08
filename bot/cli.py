"""The ``bulletin-bot`` command line: ingest, reindex, ask, chat, issues, eval, bench, convert."""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import unicodedata
from pathlib import Path

import click

from bot.engine import BulletinBotError, Engine
from bot.settings import TODAY_ENV, Settings, load_settings, reference_day, replace


class Context:
    """What the global options decide, handed to each command: the settings and, made once, the engine."""

    def __init__(self, settings: Settings, today: str | None):
        self.settings = settings
        self.today_option = today
        self._engine: Engine | None = None

    def engine(self, today: dt.date | None = None, start: bool = True) -> Engine:
        """Return the one engine (its index built first, saying so on stderr, when there is none); without
        --today it reads the day afresh for every question."""
        if self._engine is None:
            fixed = today or (reference_day(self.settings, self.today_option) if self.today_option else None)
            self._engine = Engine(self.settings, today=fixed, workers=1)
        if start:
            self._engine.start(progress=sys.stderr.isatty(), say=lambda m: click.echo(m, err=True))
        return self._engine


@click.group()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Settings file (default: ./config.toml if present, else the checkout's own config.toml).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where the corpus folder, SQLite, FAISS and keyword files live (default: env "
                   "BULLETIN_BOT_DATA_DIR, else [data] dir taken from the settings file's folder).")
@click.option("--today", default=None, metavar="YYYY-MM-DD",
              help="Reference day for relative dates (env BULLETIN_BOT_TODAY; default: today).")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, data_dir: str | None, today: str | None, verbose: bool) -> None:
    """Answer questions about the 南阳卫生健康体育动态 bulletins, with citations."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    settings = load_settings(config_path)
    if data_dir:
        settings = replace(settings, data={"dir": str(Path(data_dir).absolute())})
    if today:
        reference_day(settings, today)          # fail early on a malformed date
    ctx.obj = Context(settings, today)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
def ingest(obj: Context, paths: tuple[str, ...]) -> None:
    """Add bulletin files (.txt .md .pdf .docx) to the corpus and update the index incrementally."""
    engine = obj.engine(start=False)
    before = _followed_issues(engine)
    report = engine.ingest([Path(p) for p in paths], progress=True)
    for line in report.lines():
        click.echo(line)
    if report.changed:
        _notify_followers(obj, engine, before)
    if report.rejected and not report.changed and not report.skipped:
        sys.exit(1)


@cli.command()
@click.pass_obj
def reindex(obj: Context) -> None:
    """Rebuild the index from the corpus folder into a new directory and swap it in atomically."""
    engine = obj.engine()
    before = _followed_issues(engine)
    path = engine.reindex(progress=True)
    click.echo(f"reindexed: {path.name}")
    _notify_followers(obj, engine, before)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question per line.")
@click.option("-k", "top_k", type=click.IntRange(1, 50), default=None, help="Sources per answer (default 5).")
@click.argument("question", nargs=-1, required=True)
@click.pass_obj
def ask(obj: Context, as_json: bool, top_k: int | None, question: tuple[str, ...]) -> None:
    """Answer a question; with "-" read one question per stdin line (the model is loaded once)."""
    engine = obj.engine()
    questions = [line.strip() for line in sys.stdin] if question == ("-",) else [" ".join(question)]
    for q in questions:
        if question == ("-",) and not q:
            continue
        answer = engine.answer(q, k=top_k)
        if as_json:
            click.echo(json.dumps(answer.to_json(q), ensure_ascii=False))
        else:
            click.echo(answer.text)


@cli.command()
@click.pass_obj
def chat(obj: Context) -> None:
    """Ask questions interactively; a short follow-up is read against the article just cited (/new forgets it;
    empty line or Ctrl-D quits)."""
    from bot import replies
    from bot.followup import topic_after, with_topic
    engine = obj.engine()
    click.echo(replies.CHAT_WELCOME)
    topic = None
    while True:
        try:
            q = input("问> ").strip()
        except EOFError:
            break
        if not q:
            break
        if q == "/new":
            topic = None
            click.echo(replies.TG_NEW_TOPIC + "\n")
            continue
        question, topic = with_topic(topic, q, obj.settings.telegram.context_minutes)
        answer = engine.answer(question)
        topic = topic_after(answer, topic)
        click.echo(answer.text + "\n")


@cli.command("issues")
@click.pass_obj
def list_issues(obj: Context) -> None:
    """List the indexed issues with their article counts."""
    rows = obj.engine().issues()
    numbers = [_issue_number(row["number"]) for row in rows]
    width = max((display_width(n) for n in numbers), default=0)
    for row, number in zip(rows, numbers):
        padded = number + " " * (width - display_width(number))
        click.echo(f"{row['date']}  {padded}  {row['articles']:3d} 篇  {row['source_name']}")


def _issue_number(number: str) -> str:
    """Return "2024年第89期" for a stored "2024-89", "" for an issue without a number."""
    year, _, n = number.partition("-")
    return f"{year}年第{n}期" if n else ""


def display_width(text: str) -> int:
    """Return how many terminal columns text takes: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


@cli.command("eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("-k", "top_k", type=click.IntRange(1, 50), default=5, help="k of Recall@k.")
@click.option("--failures", is_flag=True, help="Also print the questions answered wrongly.")
@click.option("--voices", is_flag=True,
              help="Ask every question again as residents type it (traditional characters, a preamble, a pinyin slip) "
                   "and print each voice's figures.")
@click.pass_obj
def eval_command(obj: Context, file: str, top_k: int, failures: bool, voices: bool) -> None:
    """Score the bot on a JSONL question set (Recall@k, MRR@10, accuracy, abstention)."""
    from bot.measure.evaluate import evaluate, load_questions
    explicit = obj.today_option or os.environ.get(TODAY_ENV)
    today = reference_day(obj.settings, explicit) if explicit else dt.date.fromisoformat(obj.settings.eval.today)
    rows = load_questions(Path(file))
    if voices:
        from bot.measure.voices import VOICES, rewritten
        for voice in VOICES:
            report = evaluate(obj.engine(today).answerer, rewritten(rows, voice), k=top_k, progress=True)
            click.echo(f"{voice:<12} {report.lines()[2]}   out-of-scope abstention {report.oos_abstention:.3f}")
        return
    report = evaluate(obj.engine(today).answerer, rows, k=top_k, progress=True)
    if failures:
        for f in report.failures:
            click.echo(json.dumps(f, ensure_ascii=False))
    for line in report.lines():
        click.echo(line)


@cli.command("fit")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--cv/--no-cv", default=True, help="Print cross-validated figures (folds by article) first.")
@click.option("--folds", type=click.IntRange(2, 20), default=5, help="Folds of the cross-validation.")
@click.option("--synthetic", type=click.IntRange(0, 5000), default=400, help="Templated questions from the corpus.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Where to write the model (default: the bundled bot/reader/model.json).")
@click.pass_obj
def fit_command(obj: Context, files: tuple[str, ...], cv: bool, folds: int, synthetic: int, out: str | None) -> None:
    """Fit the reader (answer-sentence and answerability models) on labelled question sets.

    FILES default to the project's own bot/reader/questions.jsonl plus ../shared/eval/{dev,more}.jsonl
    when present. Relative dates are read against [eval] today.
    """
    from bot.measure.evaluate import load_questions
    from bot.reader import fit as fitting
    paths = [Path(f) for f in files] or fitting.default_question_files()
    if not paths:
        raise BulletinBotError("no question files to fit on")
    rows = []
    for path in paths:
        for row in load_questions(path):
            row["set"] = path.stem
            rows.append(row)
    today = dt.date.fromisoformat(obj.settings.eval.today)
    answerer = obj.engine(today).answerer
    click.echo(f"fitting on {len(rows)} questions from {', '.join(str(p) for p in paths)} "
               f"and {synthetic} synthetic ones", err=True)
    examples = fitting.gather(answerer, rows, synthetic=False)
    examples += fitting.gather(answerer, fitting.synthetic_rows(answerer.store.all_articles(), synthetic), True)
    meta = {"fitted": dt.date.today().isoformat(), "questions": len(rows), "synthetic": synthetic,
            "files": [p.name for p in paths]}
    if cv:
        figures = fitting.cross_validate(answerer, examples, folds)
        click.echo(f"fitted reader, cross-validated ({folds} folds by article):")
        for name, fig in sorted(figures.items()):
            click.echo("  " + fig.line(name))
        click.echo("rules reader, same questions (hand-set, no folds):")
        for name, fig in sorted(fitting.rules_figures(answerer, examples).items()):
            click.echo("  " + fig.line(name))
        meta["cv"] = {name: fig.line(name) for name, fig in figures.items()}
    model = fitting.fit(examples, meta)
    target = fitting.save(model, Path(out) if out else None)
    click.echo(f"reader model written: {target}")


@cli.command("backup")
@click.argument("archive", type=click.Path(dir_okay=False))
@click.pass_obj
def backup_command(obj: Context, archive: str) -> None:
    """Write the corpus, the query log and the served index into one .tar.gz archive."""
    summary = obj.engine(start=False).backup(Path(archive))
    click.echo(f"backup written: {archive} ({len(summary['bulletins'])} bulletin files, index {summary['generation']}, "
               f"query log {'yes' if summary['querylog'] else 'no'})")


@cli.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace a non-empty data directory (kept aside, not deleted).")
@click.pass_obj
def restore_command(obj: Context, archive: str, force: bool) -> None:
    """Restore a backup archive into the data directory (checked before anything is replaced)."""
    summary = obj.engine(start=False).restore(Path(archive), force)
    click.echo(f"restored: {len(summary['bulletins'])} bulletin files, index {summary['generation']} "
               f"into {obj.settings.data_dir}")


@cli.command()
@click.pass_obj
def serve(obj: Context) -> None:
    """Run the bot: Telegram (when its token is set), the web chat page, the HTTP API and WeChat (when enabled)."""
    import asyncio
    from bot.channels.serve import serve as run
    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    try:
        fixed = reference_day(obj.settings, obj.today_option) if obj.today_option else None
        engine = Engine(obj.settings, today=fixed)
        engine.start(progress=sys.stderr.isatty(), say=lambda m: click.echo(m, err=True))
        asyncio.run(run(obj.settings, engine))
    except KeyboardInterrupt:
        pass


@cli.command()
@click.option("--questions", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSONL file of questions (\"q\" field); default: a built-in sample of every kind.")
@click.option("--rounds", type=click.IntRange(1, 100), default=5, help="Passes over the questions.")
@click.option("--cold-runs", type=click.IntRange(1, 20), default=3, help="Fresh processes timed to their first answer.")
@click.option("--scale", is_flag=True, help="Run the scale benchmark on synthetic corpora instead (see --sizes).")
@click.option("--sizes", default="50,500,5000", show_default=True, help="--scale: issues per synthetic corpus.")
@click.option("--sample-issues", type=click.IntRange(1, 1000), default=8, show_default=True,
              help="--scale: issues embedded for real to measure build throughput.")
@click.option("--out", type=click.Path(file_okay=False), default="bench-results", show_default=True,
              help="--scale: folder for scale.json, scale.md and scale.png.")
@click.option("--encoders", is_flag=True, help="Compare the embedding backends side by side instead.")
@click.pass_context
def bench(ctx: click.Context, questions: str | None, rounds: int, cold_runs: int, scale: bool, sizes: str,
          sample_issues: int, out: str, encoders: bool) -> None:
    """Print cold-start time to the first answer and per-question latency after it (or --scale, --encoders)."""
    from bot.measure import latency as b
    obj: Context = ctx.obj
    if scale or encoders:
        from bot.measure import scale as bench_scale
        if encoders:
            bench_scale.compare_encoders(obj.settings, say=click.echo)
        if scale:
            bench_scale.run(obj.settings, [int(n) for n in sizes.split(",")], sample_issues, Path(out), say=click.echo)
        return
    answerer = obj.engine().answerer            # builds the index first if there is none
    qs = b.load_questions(Path(questions) if questions else None)
    config = ctx.parent.params.get("config_path")
    click.echo(f"timing {cold_runs} cold start(s) in fresh processes, then {rounds} round(s) of {len(qs)} questions ...",
               err=True)
    cold = [b.cold_start(obj.settings.data_dir, config, qs[0]) for _ in range(cold_runs)]
    for line in b.report(cold, b.latency(answerer, qs, rounds)):
        click.echo(line)


@cli.command()
@click.option("--no-onnx", is_flag=True, help="Only the sentence-transformers folder, no ONNX export.")
@click.pass_obj
def convert(obj: Context, no_onnx: bool) -> None:
    """Rebuild the bundled 4-bit e5 model as a sentence-transformers folder (+ ONNX fp32/int8) in <data>/models."""
    target = obj.engine(start=False).convert_model(onnx=not no_onnx, say=lambda m: click.echo(m, err=True))
    click.echo(f"model folder: {target}")


@cli.command("follow-eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False), default="tests/data/follow_labels.jsonl")
@click.option("--folds", type=click.IntRange(2, 20), default=5, help="Folds of the cross-validation (by topic).")
@click.pass_obj
def follow_eval(obj: Context, file: str, folds: int) -> None:
    """Print topic-matching precision and recall on labelled topics: at the [follow] thresholds, and with the
    thresholds chosen on the other folds' topics (cross-validated). The labelled articles must be indexed
    (the labels also name the test issue tests/data/follow-issue-2025-08-05.txt: `ingest` it first)."""
    from bot.measure import follow_eval as ev
    engine = obj.engine(dt.date.fromisoformat(obj.settings.eval.today))
    follow = obj.settings.follow
    topics, missing = ev.score_topics(engine.matcher, ev.load_labels(Path(file)))
    if missing:
        raise BulletinBotError(f"{len(missing)} labelled articles are not indexed (first: {missing[0]}); "
                               "ingest the issues the labels name")
    pairs = sum(len(t.matches) for t in topics)
    click.echo(f"{len(topics)} topics, {pairs} labelled (topic, article) matches")
    click.echo(ev.figures(topics, follow.min_coverage, follow.min_mentions, follow.min_answerable)
               .line(f"[follow] thresholds {follow.min_coverage:g}/{follow.min_mentions:g}/{follow.min_answerable:g}"))
    figures, chosen = ev.cross_validate(topics, folds)
    click.echo(figures.line(f"cross-validated ({folds} folds by topic)"))
    click.echo("thresholds chosen per fold (coverage/mentions/answerable): "
               + ", ".join("/".join(f"{x:g}" for x in point) for point in chosen))


def _followed_issues(engine: Engine) -> dict | None:
    """Return the served issues before a write (key -> hash) when anyone follows a topic, else None."""
    return engine.snapshot() if engine.has_followers() else None


def _notify_followers(obj: Context, engine: Engine, before: dict | None) -> None:
    """Tell followers about what the write added or replaced: Telegram when its token is set, WeChat when a
    template message is configured."""
    import asyncio
    from bot.channels.notify import Notifier
    if before is None:
        return
    notifier = Notifier(obj.settings.wechat, obj.settings.follow, engine)
    token = os.environ.get(obj.settings.telegram.token_env, "")

    async def run():
        try:
            if not token:
                return await notifier.notify(before)
            from telegram.error import TelegramError
            from bot.channels.telegram import notice_bot
            try:
                async with notice_bot(obj.settings.telegram, token) as bot:
                    return await notifier.notify(before, bot)
            except TelegramError as exc:                  # the issue is in; only the notices could not go out
                raise BulletinBotError(f"followers not told: the Telegram Bot API failed ({type(exc).__name__})") from None
        finally:
            engine.close()
    click.echo(asyncio.run(run()).line())
    if not token:
        click.echo(f"(Telegram followers not told: env {obj.settings.telegram.token_env} is not set)", err=True)


def main() -> None:
    """Run the CLI, turning bulletin-bot errors into one clean message."""
    try:
        cli(standalone_mode=True)
    except BulletinBotError as exc:
        click.echo(f"error: {exc.user_message}", err=True)
        sys.exit(2)
