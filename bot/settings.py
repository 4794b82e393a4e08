"""Typed settings: config.toml -> frozen dataclasses, read once at the edge.

Every key has a default here and is documented in config.toml; an unknown section or key is a
``ConfigError``, never silence. Secrets are never values here, only the *names* of environment
variables that hold them.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from corpus.errors import ConfigError
from index.settings import DataSettings, IndexSettings  # noqa: F401 - DataSettings for the channels (never index)

TODAY_ENV = "BULLETIN_BOT_TODAY"
DATA_DIR_ENV = "BULLETIN_BOT_DATA_DIR"           # overrides [data] dir (the --data-dir option overrides both)
PROJECT_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"   # a checkout's own config.toml


READERS = ("rules", "fitted")


@dataclass(frozen=True)
class AnswerSettings:
    reader: str = "fitted"             # "rules": quote by the hand-set scorer; "fitted": the reader of bot/reader
    max_sentences: int = 3             # sentences quoted from the best article
    max_articles: int = 2              # articles quoted in a non-listing answer
    min_coverage: float = 0.25         # abstain below this weighted share of the question's terms in the best article
    min_coverage_agreed: float = 0.12  # ... or below this when keyword and vector search both rank it top-2
    today: str = ""                    # reference day for relative dates (YYYY-MM-DD); "" = the real today


@dataclass(frozen=True)
class GenerationSettings:
    enabled: bool = False              # rewrite extractive answers with an LLM (citations are kept)
    base_url: str = ""                 # an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1
    model: str = ""
    api_key_env: str = "BULLETIN_BOT_LLM_API_KEY"   # name of the env var holding the API key
    timeout_s: float = 20.0
    temperature: float = 0.0


@dataclass(frozen=True)
class QueryLogSettings:
    salt_env: str = "BULLETIN_BOT_LOG_SALT"     # env var holding the salt for user-id hashes (else one is kept in the data dir)


@dataclass(frozen=True)
class TelegramSettings:
    token_env: str = "BULLETIN_BOT_TELEGRAM_TOKEN"   # env var holding the bot token; unset = Telegram off
    admins: tuple = ()                 # Telegram user ids allowed to upload issues, /reindex, /stats, /unanswered
    mode: str = "polling"              # "polling" | "webhook"
    webhook_url: str = ""              # public URL Telegram posts updates to (webhook mode)
    webhook_listen: str = "127.0.0.1"  # address the webhook server binds
    webhook_port: int = 8443
    secret_token_env: str = "BULLETIN_BOT_TELEGRAM_SECRET"   # env var holding the webhook secret_token
    base_url: str = ""                 # Bot API base, e.g. a self-hosted server; "" = https://api.telegram.org/bot
    base_file_url: str = ""            # Bot API file base; "" = https://api.telegram.org/file/bot
    max_message_chars: int = 500       # longer questions get a polite request to shorten
    context_minutes: float = 5.0       # follow-ups are read against the last cited article this long
    questions_per_minute: int = 10     # per-user limit for incoming questions
    notify_admins_on_error: bool = False
    retry_max_s: float = 60.0          # Bot API unreachable at start: retry after 1, 2, 4 ... s, at most this


@dataclass(frozen=True)
class WeChatSettings:
    enabled: bool = False
    token_env: str = "BULLETIN_BOT_WECHAT_TOKEN"         # env var: the token set in the Official Account console
    app_id: str = ""
    app_secret_env: str = "BULLETIN_BOT_WECHAT_SECRET"   # env var: the app secret (customer-service API)
    aes_key_env: str = "BULLETIN_BOT_WECHAT_AES_KEY"     # env var: EncodingAESKey; set = safe (AES) mode
    api_base_url: str = "https://api.weixin.qq.com/cgi-bin/"   # customer-service API base (tests point it at a stand-in)
    reply_budget_s: float = 4.0        # answer passively within this; later answers go by customer-service message
    max_reply_bytes: int = 2000        # WeChat's text limit; longer answers end with 回复「更多」
    path: str = "/wechat"
    send_attempts: int = 4             # customer-service message: tries while WeChat's API cannot be reached
    retry_max_s: float = 30.0          # ... waiting 1, 2, 4 ... s between them, at most this


@dataclass(frozen=True)
class WebSettings:
    enabled: bool = True               # the HTTP API and the web chat page
    host: str = "127.0.0.1"
    port: int = 8080
    max_question_chars: int = 500
    max_body_bytes: int = 16384
    workers: int = 0                   # answer workers for every channel: 1 = a thread here, N = N processes; 0 = one per core
    watch_s: float = 1.0               # how often each answer worker looks for a new index generation (another process's ingest)


@dataclass(frozen=True)
class FollowSettings:
    max_topics: int = 10               # topics one user may follow
    max_topic_chars: int = 30          # longest topic (characters, spaces included)
    commands_per_minute: int = 6       # follow / unfollow commands per user per minute
    min_coverage: float = 0.9          # a match needs every topic word to have this IDF-weighted share of its terms
    min_mentions: float = 2.0          # ... and the terms to recur this often (mean per term, headline x3) ...
    min_answerable: float = 0.6        # ... or the fitted reader to read it as answering the topic at least this
    feed_entries: int = 50             # entries per Atom feed
    public_url: str = ""               # the web page's public address, for feed links ("" = http://[web] host:port)
    wechat_template_id: str = ""       # WeChat template message for notifications; "" = replies point to the feed


@dataclass(frozen=True)
class EvalSettings:
    today: str = "2025-09-20"          # reference day the bundled dev questions were written against


@dataclass(frozen=True)
class Settings(IndexSettings):
    """The whole config file: the index's sections (inherited, in the file's order) and the bot's."""

    answer: AnswerSettings = field(default_factory=AnswerSettings)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    querylog: QueryLogSettings = field(default_factory=QueryLogSettings)
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    wechat: WeChatSettings = field(default_factory=WeChatSettings)
    web: WebSettings = field(default_factory=WebSettings)
    follow: FollowSettings = field(default_factory=FollowSettings)

    @property
    def index(self) -> IndexSettings:
        """The sections the index layer receives, and nothing else."""
        return IndexSettings(self.data, self.embedding, self.vector_index, self.chunking, self.retrieval)


def _section(cls, name: str, raw: object):
    if not isinstance(raw, dict):
        raise ConfigError(f"config: [{name}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"config: unknown key(s) in [{name}]: {', '.join(unknown)}")
    values = {}
    for key, value in raw.items():
        default = getattr(cls(), key)
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, (int, str)) and not isinstance(v, bool)
                                                      for v in value):
                raise ConfigError(f"config: [{name}] {key} must be a list of ids, got {value!r}")
            values[key] = tuple(value)
            continue
        if isinstance(default, bool) != isinstance(value, bool) or (
            not isinstance(value, type(default)) and not (isinstance(default, float) and isinstance(value, int))
        ):
            raise ConfigError(f"config: [{name}] {key} must be {type(default).__name__}, got {value!r}")
        values[key] = float(value) if isinstance(default, float) else value
    return cls(**values)


def parse_settings(raw: dict) -> Settings:
    """Turn a parsed TOML document into ``Settings``, rejecting unknown keys."""
    sections = {f.name: f.type for f in dataclasses.fields(Settings)}
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(f"config: unknown section(s): {', '.join(unknown)}")
    kwargs = {}
    for f in dataclasses.fields(Settings):
        cls = f.default_factory().__class__
        kwargs[f.name] = _section(cls, f.name, raw.get(f.name, {}))
    if kwargs["answer"].reader not in READERS:
        raise ConfigError(f"config: [answer] reader must be one of {', '.join(READERS)}, got {kwargs['answer'].reader!r}")
    _check_web(kwargs["web"])
    _check_follow(kwargs["follow"])
    return Settings(**kwargs)


def _check_web(web: WebSettings) -> None:
    """Reject a negative worker count and a watcher that would spin (0 s) or never look (over a day)."""
    if web.workers < 0 or not 0 < web.watch_s <= 86400:
        raise ConfigError(f"config: [web] workers must not be negative and watch_s must be above 0 and at most "
                          f"86400 seconds, got workers = {web.workers}, watch_s = {web.watch_s}")


def _check_follow(follow: FollowSettings) -> None:
    """Reject [follow] values that would make following useless or unbounded."""
    if not 1 <= follow.max_topics <= 100:
        raise ConfigError(f"config: [follow] max_topics must be 1 to 100, got {follow.max_topics}")
    if not 2 <= follow.max_topic_chars <= 100:
        raise ConfigError(f"config: [follow] max_topic_chars must be 2 to 100, got {follow.max_topic_chars}")
    if follow.commands_per_minute < 1 or not 1 <= follow.feed_entries <= 500:
        raise ConfigError("config: [follow] commands_per_minute must be at least 1 and feed_entries 1 to 500")
    if follow.min_mentions < 0:
        raise ConfigError(f"config: [follow] min_mentions must not be negative, got {follow.min_mentions}")
    for key in ("min_coverage", "min_answerable"):
        if not 0.0 <= getattr(follow, key) <= 1.0:
            raise ConfigError(f"config: [follow] {key} must be between 0 and 1, got {getattr(follow, key)}")
    if follow.public_url and not follow.public_url.startswith(("http://", "https://")):
        raise ConfigError(f"config: [follow] public_url must start with http:// or https://, got {follow.public_url!r}")


def find_config(path: str | Path | None = None) -> Path | None:
    """Return the settings file: the one named, else ./config.toml, else the checkout's own; None = defaults."""
    if path is not None:
        return Path(path)
    return next((p for p in (Path("config.toml"), PROJECT_CONFIG) if p.is_file()), None)


def default_home() -> Path:
    """Return where data lives when there is no settings file at all (an installed copy): the user's data folder."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "bulletin-bot"


def load_settings(path: str | Path | None = None) -> Settings:
    """Read the settings file (or defaults when there is none) with the data folder made absolute.

    A relative ``[data] dir`` is taken from the settings file's folder, never from the working
    directory, so a command run from anywhere finds the same data; env BULLETIN_BOT_DATA_DIR overrides it.
    """
    found = find_config(path)
    settings = Settings() if found is None else parse_settings(_read_toml(found))
    base = found.resolve().parent if found is not None else default_home()
    data_dir = Path(os.environ.get(DATA_DIR_ENV) or base / settings.data.dir).absolute()
    return replace(settings, data={"dir": str(data_dir)})


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def replace(settings: Settings, **sections: dict) -> Settings:
    """Return settings with some keys of some sections replaced: replace(s, data={"dir": "x"})."""
    changed = {name: dataclasses.replace(getattr(settings, name), **values) for name, values in sections.items()}
    return dataclasses.replace(settings, **changed)


def reference_day(settings: Settings, override: str | None = None) -> dt.date:
    """Return the day relative dates are read against: option, env, config, else today."""
    for value in (override, os.environ.get(TODAY_ENV), settings.answer.today):
        if value:
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise ConfigError(f"not a date (YYYY-MM-DD): {value!r}") from None
    return dt.date.today()
