"""The store's user-facing errors: each message says what is wrong and what to do."""

from __future__ import annotations

from index.errors import CitebotError


class StoreError(CitebotError):
    """Base for index problems a user can act on; the message says what to do."""


class IndexMissingError(StoreError):
    """There is no index to read yet."""


class EmbedderMismatchError(StoreError):
    """The index was built with another embedding backend or model than the one configured."""


class OutdatedIndexError(StoreError):
    """The index was built by an older Citebot whose layout this one cannot read."""


class IndexBusyError(StoreError):
    """Another process is writing this index."""


class StoreUnavailableError(StoreError):
    """The index cannot be reached or read right now (server down, disk full, damaged files)."""


class StoreDamagedError(StoreUnavailableError):
    """The embedded store's files are damaged; `citebot index --rebuild` moves them aside."""
