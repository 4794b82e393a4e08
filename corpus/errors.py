"""One exception tree for bulletin-bot; its base and the errors of reading files live here, at the bottom layer.

    BulletinBotError            base; carries ``user_message`` (safe to show to a person)
    ├── ConfigError             config.toml is missing, malformed or has unknown keys
    ├── BadBulletin             a file cannot become an issue (empty, binary, no date, ...)
    └── (index/errors.py)       IndexMismatch, IndexCorrupt, IndexBusy, StorageError, BadArchive

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
