"""Team channels: which articles folder and collection each Discord channel answers from.

`CITEBOT_CHANNELS_FILE` is a TOML file of channel or category ids; a channel not in it (and
not in a mapped category) uses `CITEBOT_ARTICLES_DIR` / `CITEBOT_COLLECTION`, and a thread
follows its parent channel::

    [channels.123456789012345678]      # a channel id
    articles = "articles/research"     # relative to this file, or absolute
    collection = "research"

    [channels.234567890123456789]      # a category id: every channel in it
    articles = "/srv/articles/sales"
    collection = "sales"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from index.errors import ConfigError
from index.store import validate_collection_name

_ENTRY_KEYS = {"articles", "collection"}


class ChannelMapError(ConfigError):
    """The channels file is missing or invalid; the message says where and why."""


@dataclass(frozen=True)
class Scope:
    """What a channel answers from: one articles folder indexed into one collection."""

    articles: Path
    collection: str


class ChannelMap:
    """Channel and category ids mapped to scopes, with the default scope for the rest."""

    def __init__(self, default: Scope, mapped: dict[int, Scope] | None = None) -> None:
        self.default = default
        self.mapped = dict(mapped or {})

    @classmethod
    def load(cls, path: Path | None, default: Scope) -> ChannelMap:
        """Read and validate a channels file; with no file every channel uses `default`."""
        if path is None:
            return cls(default)
        try:
            with path.open("rb") as file:
                document = tomllib.load(file)
        except FileNotFoundError:
            raise ChannelMapError(f"channels file {path}: no such file") from None
        except tomllib.TOMLDecodeError as error:
            raise ChannelMapError(f"channels file {path}: invalid TOML: {error}") from None
        unknown = sorted(set(document) - {"channels"})
        if unknown:
            raise ChannelMapError(
                f"channels file {path}: unknown key(s) {', '.join(unknown)}; "
                "expected [channels.<id>] tables"
            )
        entries = document.get("channels", {})
        if not isinstance(entries, dict):
            raise ChannelMapError(f"channels file {path}: 'channels' must be a table")
        mapped = {
            _channel_id(path, key): _scope(path, key, entry) for key, entry in entries.items()
        }
        channel_map = cls(default, mapped)
        channel_map._check_collections_are_unambiguous(path)
        return channel_map

    def scope_for(self, channel_id: int | None, category_id: int | None = None) -> Scope:
        """The channel's own mapping, else its category's, else the default."""
        for candidate in (channel_id, category_id):
            if candidate is not None and candidate in self.mapped:
                return self.mapped[candidate]
        return self.default

    def ids_mapped_to(self, scope: Scope) -> list[int]:
        """The channel and category ids that use `scope` explicitly."""
        return [channel_id for channel_id, mapped in self.mapped.items() if mapped == scope]

    def scopes(self) -> list[Scope]:
        """Every distinct scope, the default first."""
        distinct = [self.default]
        for scope in self.mapped.values():
            if scope not in distinct:
                distinct.append(scope)
        return distinct

    def _check_collections_are_unambiguous(self, path: Path) -> None:
        """One collection, one folder: reindexing either folder would drop the other's articles."""
        folders: dict[str, Path] = {self.default.collection: self.default.articles.resolve()}
        for scope in self.mapped.values():
            folder = folders.setdefault(scope.collection, scope.articles.resolve())
            if folder != scope.articles.resolve():
                raise ChannelMapError(
                    f"channels file {path}: collection {scope.collection!r} is mapped to two "
                    f"folders ({folder} and {scope.articles}); give each folder its own collection"
                )


def _channel_id(path: Path, key: str) -> int:
    if not key.isdigit():
        raise ChannelMapError(
            f"channels file {path}: [channels.{key}] must be a channel or category id (digits)"
        )
    return int(key)


def _scope(path: Path, key: str, entry: object) -> Scope:
    """One `[channels.<id>]` table as a scope; its articles folder must exist."""
    where = f"channels file {path}: [channels.{key}]"
    if not isinstance(entry, dict):
        raise ChannelMapError(f"{where} must be a table with articles and collection")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    missing = sorted(_ENTRY_KEYS - set(entry))
    if unknown or missing:
        raise ChannelMapError(
            f"{where}: expected exactly articles and collection "
            f"(unknown: {', '.join(unknown) or 'none'}; missing: {', '.join(missing) or 'none'})"
        )
    articles, collection = entry["articles"], entry["collection"]
    if not isinstance(articles, str) or not isinstance(collection, str):
        raise ChannelMapError(f"{where}: articles and collection must be strings")
    try:
        validate_collection_name(collection)
    except ValueError as error:
        raise ChannelMapError(f"{where}: {error}") from None
    folder = path.parent / articles
    if not folder.is_dir():
        raise ChannelMapError(f"{where}: articles folder {folder} does not exist")
    return Scope(articles=folder, collection=collection)
