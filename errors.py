"""One exception tree for bulletin-bot.

    BulletinBotError            base; carries ``user_message`` (safe to show to a person)
    ├── ConfigError             config.toml is missing, malformed or has unknown keys
    ├── BadBulletin             a file cannot become an issue (empty, binary, no date, ...)
    ├── IndexMismatch           the index on disk was built with other settings
    ├── IndexCorrupt            an index file is missing or fails its checksum
    ├── IndexBusy               another process holds the index write lock
    ├── StorageError            the data folder cannot be written (read-only, disk full, cannot be opened)
    └── BadArchive              a backup archive is damaged or hostile; restore refused, nothing changed

"Not in the bulletins" is a normal ``Answer(abstained=True)``, never an exception.
"""
from __future__ import annotations


class BulletinBotError(Exception):
    """Base error whose ``user_message`` can be shown to a user or operator."""

    def __init__(self, user_message: str):
        super().__init__(user_message)
        self.user_message = user_message


class ConfigError(BulletinBotError):
    """Raise when the configuration cannot be used."""


class BadBulletin(BulletinBotError):
    """Raise when a file cannot be read as a bulletin issue."""


class IndexMismatch(BulletinBotError):
    """Raise when an index was built with settings other than the current ones."""


class IndexCorrupt(BulletinBotError):
    """Raise when an index file is missing, truncated or fails its checksum."""


class IndexBusy(BulletinBotError):
    """Raise when another writer holds the index lock."""


class StorageError(BulletinBotError):
    """Raise when the data folder cannot be read or written (read-only, disk full); nothing was changed."""


class BadArchive(BulletinBotError):
    """Raise when a backup archive is damaged, truncated or hostile; the restore target is left unchanged."""
