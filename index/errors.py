"""The index's errors (subclasses of corpus.errors.BulletinBotError).

    IndexMismatch           the index on disk was built with other settings
    IndexCorrupt            an index file is missing or fails its checksum
    IndexBusy               another process holds the index write lock
    StorageError            the data folder cannot be written (read-only, disk full, cannot be opened)
    BadArchive              a backup archive is damaged or hostile; restore refused, nothing changed
"""
from __future__ import annotations

from corpus.errors import BulletinBotError


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
