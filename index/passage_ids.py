"""The passage-id codec: a passage's id names its chunk and its kind, so a search needs no
metadata fetch to know whose passage it found."""

from __future__ import annotations

from index.records import PassageKind

_KIND_CODES: dict[str, PassageKind] = {"s": "sentence", "w": "window"}


def passage_id(chunk_id: str, kind: PassageKind, n: int) -> str:
    """`<chunk id>.s<n>` or `<chunk id>.w<n>`: the id says whose passage it is, and what kind."""
    return f"{chunk_id}.{kind[0]}{n}"


def parse_passage_id(passage: str) -> tuple[str, PassageKind]:
    """(chunk id, kind) of a passage id made by `passage_id`."""
    chunk_id, _, code = passage.rpartition(".")
    return chunk_id, _KIND_CODES[code[0]]
