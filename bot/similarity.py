"""How a passage's similarity to a query is shown to people (`citebot search`, /search)."""

from __future__ import annotations

SIMILARITY_EXPLAINED = (
    "similarity = how close in meaning a passage is to the query (the cosine similarity of "
    "their embeddings; 100% is the same meaning)"
)


def similarity_label(similarity: float | None) -> str:
    """ "87% similar", or "keyword match" for a passage only BM25 found (it has no similarity)."""
    return "keyword match" if similarity is None else f"{similarity:.0%} similar"
