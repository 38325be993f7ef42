"""Loading the team's article files (text, Markdown, HTML, JSON, JSON Lines) as Article records.

Every file is read through `read_contained` (inside its folder, regular, bounded) and decoded by
`decode_bytes`. A file or record that cannot be loaded becomes a `LoadFailure` with the reason,
and loading goes on with the rest; a file loaded with undecodable bytes replaced gets a
`LoadNote`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import frontmatter
import yaml

from index.decoding import DecodedText, UndecodableError, decode_bytes
from index.reading import OUTSIDE_ROOT, UnreadableFileError, contains, read_contained

MAX_FILE_BYTES = 20 * 1024 * 1024
_TITLE_MAX_CHARS = 120
# The seed convention for .txt files: "date 2025-12-11 " opens the first line.
_TXT_DATE_HEADER = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\s+")
_SENTENCE_END = re.compile(r"[。！？!?\n]|\. ")
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
# "2025-12-11", "2025/12/11 08:00", "2025-12-11T08:00:00Z", "2025年12月11日".
_DATE_PREFIX = re.compile(r"^\s*(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})")
# Metadata keys accepted for each field, in order of preference (front matter and JSON alike).
_TEXT_KEYS = ("text", "content", "body")
_DATE_KEYS = ("date", "published", "published_at")
_URL_KEYS = ("url", "link")
# An id, path or title must be storable text, so a name that is not UTF-8 is not loaded.
_UNDECODABLE_NAME = (
    "its name (or a folder's name on its path) is not valid UTF-8; rename it to index it"
)


@dataclass(frozen=True)
class Article:
    """One article ready for indexing, with an id unique across the loaded roots."""

    id: str
    path: Path
    title: str
    text: str
    date: str | None
    url: str | None
    source: str | None
    content_hash: str


@dataclass(frozen=True)
class LoadFailure:
    """A file (or one record in it) that could not be loaded, and why.

    A path whose name is not valid UTF-8 is kept with its odd bytes written as backslash escapes
    (`bad\\xff.txt`), so the failure can be printed, logged and posted.
    """

    path: Path
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(printable_path(self.path)))


@dataclass(frozen=True)
class LoadNote:
    """Something a user should know about a file that was loaded, such as replaced bytes."""

    path: Path
    message: str


@dataclass
class LoadResult:
    """Everything a load produced: the articles, and the failures and notes to report."""

    articles: list[Article]
    failures: list[LoadFailure]
    notes: list[LoadNote] = field(default_factory=list)


class _ParseError(ValueError):
    """A file or record that cannot become an article; the message is the reason."""


@dataclass(frozen=True)
class _Fields:
    """What a parser found for one article, before it gets an id and a hash."""

    title: str
    text: str
    date: str | None
    url: str | None
    source: str | None


# What a parser makes of a file's text: (id suffix, fields) per article, or a failed record.
# A parser raises _ParseError when the whole file fails.
_Parsed = list[tuple[str, _Fields] | _ParseError]


def load_articles(roots: Sequence[Path]) -> LoadResult:
    """Load every supported article file under the roots (folders or single files).

    Unreadable or unparsable files are collected as failures so one bad file never stops a load.
    """
    loaded = [
        item
        for root, prefix in zip(roots, _id_prefixes(roots), strict=True)
        for item in _load_root(Path(os.path.abspath(root)), prefix)
    ]
    return LoadResult(
        articles=[item for item in loaded if isinstance(item, Article)],
        failures=[item for item in loaded if isinstance(item, LoadFailure)],
        notes=[item for item in loaded if isinstance(item, LoadNote)],
    )


def _id_prefixes(roots: Sequence[Path]) -> list[str]:
    """Id prefix per root: none for a single root, else its name, with "~2", "~3"... on repeats."""
    if len(roots) == 1:
        return [""]
    seen: Counter[str] = Counter()
    prefixes = []
    for root in roots:
        name = Path(os.path.abspath(root)).name
        seen[name] += 1
        prefixes.append(name if seen[name] == 1 else f"{name}~{seen[name]}")
    return prefixes


_Loaded = Article | LoadFailure | LoadNote


def _load_root(root: Path, prefix: str) -> Iterator[_Loaded]:
    """Load the article files a folder holds, or the root itself when it is a file.

    A folder's files are read only where they resolve inside the folder; a file named on its
    own is read where it resolves (the user chose it), if it is a regular file.
    """
    resolved = Path(os.path.realpath(root))
    if root.is_dir():
        files, outside = _source_files(root, resolved)
        yield from outside
        files, aliases = _distinct_files(root, resolved, files)
        yield from aliases
        for path in files:
            relative_id = path.relative_to(root).as_posix()
            yield from _load_file(
                path, f"{prefix}/{relative_id}" if prefix else relative_id, resolved
            )
    elif os.path.lexists(root):
        yield from _load_file(root, prefix or root.name, resolved)
    else:
        yield LoadFailure(root, "not found")


def _source_files(root: Path, resolved_root: Path) -> tuple[list[Path], list[LoadFailure]]:
    """Supported, non-hidden files under root (hidden folders skipped), in sorted order, and a
    failure for every linked folder that leads out of it (linked folders are not followed)."""
    found = []
    outside = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in subfolders:
            link = Path(folder, name)
            if link.is_symlink() and not contains(resolved_root, os.path.realpath(link)):
                outside.append(LoadFailure(link, OUTSIDE_ROOT))
        found.extend(
            Path(folder, name)
            for name in names
            if not name.startswith(".") and Path(name).suffix.lower() in _PARSERS
        )
    return sorted(found, key=lambda path: path.relative_to(root).parts), sorted(
        outside, key=lambda failure: failure.path
    )


def _distinct_files(
    root: Path, resolved_root: Path, files: list[Path]
) -> tuple[list[Path], list[LoadNote]]:
    """Each file of a folder once: a link (symbolic or hard) to a file the folder already holds
    is left out with a note naming the one indexed, so its article is not indexed twice (the
    file itself is kept over a symbolic link to it). Links leading out are left to fail."""
    kept: dict[tuple[int, int], Path] = {}
    identities: dict[Path, tuple[int, int] | None] = {}
    for path in sorted(files, key=lambda path: (path.is_symlink(), path.relative_to(root).parts)):
        identities[path] = None  # unless it is a file inside: reading it fails with the reason
        try:
            if not contains(resolved_root, os.path.realpath(path)):
                continue
            found = path.stat()
        except OSError:
            continue
        identity = (found.st_dev, found.st_ino)
        identities[path] = identity
        kept.setdefault(identity, path)
    distinct, aliases = [], []
    for path in files:  # in the folder's order
        identity = identities[path]
        if identity is None or kept[identity] == path:
            distinct.append(path)
        else:
            same = printable_path(kept[identity].relative_to(root).as_posix())
            note = f"the same file as {same}, which is indexed once"
            aliases.append(LoadNote(Path(printable_path(path)), note))
    return distinct, aliases


def printable_path(path: Path | str) -> str:
    """The path as text that can be encoded: bytes of a name that are not UTF-8 (which Python
    keeps as lone surrogates) become backslash escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _load_file(path: Path, file_id: str, root: Path) -> Iterator[_Loaded]:
    """The articles one file holds, a failure for the file or for each bad record, and a note
    when some of its bytes could not be decoded."""
    try:
        if printable_path(path) != str(path):
            raise _ParseError(_UNDECODABLE_NAME)
        parser = _parser_for(path)
        decoded = _read_text(path, root)
        parsed = parser(decoded.text)
    except _ParseError as error:
        yield LoadFailure(path, str(error))
        return
    if decoded.note:
        yield LoadNote(path, decoded.note)
    for item in parsed:
        if isinstance(item, _ParseError):
            yield LoadFailure(path, str(item))
        else:
            id_suffix, fields = item
            yield _article(file_id + id_suffix, path, fields)


def _parser_for(path: Path) -> Callable[[str], _Parsed]:
    """The parser for the file's extension; an explicitly given unsupported file fails."""
    suffix = path.suffix.lower()
    if suffix not in _PARSERS:
        raise _ParseError(f"unsupported file type: {suffix or 'no extension'}")
    return _PARSERS[suffix]


def _read_text(path: Path, root: Path) -> DecodedText:
    """The file's decoded text; a file outside root, not regular, too large, unreadable or
    binary raises _ParseError."""
    try:
        data = read_contained(path, root, MAX_FILE_BYTES)
    except UnreadableFileError as error:
        raise _ParseError(str(error)) from error
    try:
        return decode_bytes(data)
    except UndecodableError as error:
        raise _ParseError(f"cannot decode: {error}") from error


def _article(article_id: str, path: Path, fields: _Fields) -> Article:
    """Give parsed fields their id, source path and content hash."""
    return Article(
        id=article_id,
        path=path,
        title=fields.title,
        text=fields.text,
        date=fields.date,
        url=fields.url,
        source=fields.source,
        content_hash=_content_hash(fields),
    )


def _content_hash(fields: _Fields) -> str:
    """SHA-256 of a canonical JSON of everything indexed, so any change gives a new hash."""
    canonical = json.dumps(
        [fields.title, fields.text, fields.date, fields.url, fields.source],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _make_fields(
    *,
    title: str | None,
    text: str,
    date: str | None = None,
    url: str | None = None,
    source: str | None = None,
) -> _Fields:
    """Strip the body, fail when it is empty, and fall back to its first sentence for a title."""
    body = text.strip()
    if not body:
        raise _ParseError("no text")
    return _Fields(
        title=title or _first_sentence(body), text=body, date=date, url=url, source=source
    )


def _first_sentence(text: str) -> str:
    """The text up to its first sentence end or line break, cut to the title length limit."""
    sentence = _SENTENCE_END.split(text, maxsplit=1)[0].strip()
    if len(sentence) <= _TITLE_MAX_CHARS:
        return sentence
    return sentence[: _TITLE_MAX_CHARS - 1] + "…"


def _normalise_date(value: object) -> str | None:
    """An ISO "YYYY-MM-DD" from a date, datetime or date-like string; None when unparseable."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    match = _DATE_PREFIX.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    try:
        return date(*(int(part) for part in match.groups())).isoformat()
    except ValueError:
        return None


def _scalar_text(value: object) -> str | None:
    """A metadata value as stripped text (numbers included); None when empty or not a scalar."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value).strip() or None


def _first_value(mapping: dict[str, object], keys: Sequence[str]) -> object:
    """The first present, non-empty value among the keys, else None."""
    return next((mapping[key] for key in keys if mapping.get(key) not in (None, "")), None)


def _parse_txt(text: str) -> _Parsed:
    """A plain-text article; a leading "date YYYY-MM-DD" becomes the date, the rest the body."""
    header = _TXT_DATE_HEADER.match(text)
    header_date = _normalise_date(header.group(1)) if header else None
    body = text[header.end() :] if header and header_date else text
    return [("", _make_fields(title=None, text=body, date=header_date))]


def _parse_markdown(text: str) -> _Parsed:
    """A Markdown article with optional YAML front matter for title, date, url and source."""
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as error:
        raise _ParseError(f"invalid YAML front matter: {' '.join(str(error).split())}") from error
    metadata = post.metadata
    heading = _MARKDOWN_HEADING.search(post.content)
    title = _scalar_text(metadata.get("title")) or (heading.group(1) if heading else None)
    fields = _make_fields(
        title=title,
        text=post.content,
        date=_normalise_date(_first_value(metadata, _DATE_KEYS)),
        url=_scalar_text(_first_value(metadata, _URL_KEYS)),
        source=_scalar_text(metadata.get("source")),
    )
    return [("", fields)]


def _parse_html(html: str) -> _Parsed:
    """A saved web page: trafilatura keeps the article text and drops navigation and footers
    (imported here: only indexing HTML needs it, and it costs a question-only process 0.15 s)."""
    import trafilatura

    body = trafilatura.extract(
        html,
        output_format="txt",
        include_comments=False,
        include_tables=True,
        with_metadata=False,
        favor_precision=True,
    )
    if not body or not body.strip():
        raise _ParseError("no article text found in HTML")
    metadata = trafilatura.extract_metadata(html)
    fields = _make_fields(
        title=metadata.title,
        text=body,
        date=_normalise_date(metadata.date),
        url=metadata.url,
        source=metadata.sitename,
    )
    return [("", fields)]


def _parse_json(text: str) -> _Parsed:
    """One article object, or a list of them whose ids get "#<n>" or "#<record id>"."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise _ParseError(f"invalid JSON: {error}") from error
    if isinstance(data, dict):
        return [("", _record_fields(data))]
    if not isinstance(data, list):
        raise _ParseError("expected a JSON object or a list of objects")
    seen_suffixes: set[str] = set()
    return _non_empty(
        [_record(number, value, seen_suffixes) for number, value in enumerate(data, 1)]
    )


def _parse_jsonl(text: str) -> _Parsed:
    """One article object per line (blank lines skipped); a bad line fails only itself."""
    parsed: _Parsed = []
    seen_suffixes: set[str] = set()
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            parsed.append(_ParseError(f"line {number}: invalid JSON: {error.msg}"))
            continue
        parsed.append(_record(number, value, seen_suffixes))
    return _non_empty(parsed)


def _non_empty(parsed: _Parsed) -> _Parsed:
    """The records as they are, or a whole-file failure when there are none."""
    if not parsed:
        raise _ParseError("no records")
    return parsed


def _record(
    number: int, value: object, seen_suffixes: set[str]
) -> tuple[str, _Fields] | _ParseError:
    """Record `number` of a JSON file with its "#id" suffix, or why it cannot be loaded."""
    if not isinstance(value, dict):
        return _ParseError(f"record {number}: not a JSON object")
    suffix = f"#{_scalar_text(value.get('id')) or number}"
    if suffix in seen_suffixes:
        return _ParseError(f"record {number}: duplicate id {suffix[1:]!r}")
    seen_suffixes.add(suffix)
    try:
        return suffix, _record_fields(value)
    except _ParseError as error:
        return _ParseError(f"record {number}: {error}")


def _record_fields(record: dict[str, object]) -> _Fields:
    """The article fields of a JSON object; text may also be called content or body."""
    return _make_fields(
        title=_scalar_text(record.get("title")),
        text=_scalar_text(_first_value(record, _TEXT_KEYS)) or "",
        date=_normalise_date(_first_value(record, _DATE_KEYS)),
        url=_scalar_text(_first_value(record, _URL_KEYS)),
        source=_scalar_text(record.get("source")),
    )


_PARSERS: dict[str, Callable[[str], _Parsed]] = {
    ".txt": _parse_txt,
    ".md": _parse_markdown,
    ".markdown": _parse_markdown,
    ".html": _parse_html,
    ".htm": _parse_html,
    ".json": _parse_json,
    ".jsonl": _parse_jsonl,
}
