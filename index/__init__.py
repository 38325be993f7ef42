"""Citebot's back half, which knows nothing of Discord: article files become `Article` records
(`articles.py`, `reading.py`, `decoding.py`), text becomes chunks (`sentences.py`,
`chunking.py`), chunks become passage vectors (`passages.py`, `embedding.py`), vectors and texts
go into Chroma (`store.py`, `chroma.py`, `coordination.py`, `indexer.py`, `corpus.py`), and a
question finds its chunks (`lexical.py`, `retrieval.py`, `aliases.py`, `reranking.py`)."""
