"""Unrelated paragraphs that show how similar a query looks to text that cannot answer it.

A multilingual model scores any same-language pair fairly high, so a raw similarity says little
on its own; what matters is how far the best passage stands above text that does not answer.
In a large corpus the other chunks show that; a corpus of a few chunks is topped up with these
paragraphs, scored exactly as chunks are (the mean of the best sentence's similarity and the
best pair of adjacent sentences'), so that the two kinds of score compare.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from index.cache_files import write_atomically
from index.embedding import Embedder

BACKGROUND_PASSAGES = (
    "明天北部天氣轉涼，早晚溫差大，請注意保暖。",
    "這家餐廳的牛肉麵湯頭濃郁，假日常常大排長龍。",
    "市政府宣布公園將於下個月整修，期間暫停開放。",
    "她在大學主修化學，畢業後到醫院擔任藥劑師。",
    "颱風過後，農民忙著清理被吹倒的香蕉樹。",
    "捷運新路線預計年底通車，沿線房價應聲上漲。",
    "這本小說描寫一個家族三代人的故事。",
    "球隊在延長賽中以一分之差落敗，球迷十分失望。",
    "博物館展出清代的瓷器與書畫，吸引許多遊客。",
    "醫生建議每天至少運動三十分鐘，並且多喝水。",
    "今年的稻米收成比去年好，價格也較穩定。",
    "學校舉辦園遊會，學生們準備了各式各樣的點心。",
    "他搭乘夜車前往南部，隔天清晨抵達。",
    "這座古老的寺廟已有三百多年歷史。",
    "手機電池續航力不足，是許多使用者的困擾。",
    "冬天到了，很多人喜歡吃火鍋取暖。",
    "明天上海有小雨，气温在十度左右。",
    "这位歌手的新专辑在网上引起热烈讨论。",
    "图书馆延长了考试期间的开放时间。",
    "他每天早上骑自行车去公司上班。",
    "这座城市的地铁网络覆盖了大部分地区。",
    "老师鼓励学生多读课外书，培养阅读习惯。",
    "超市的水果价格因为天气原因上涨。",
    "这部电影讲述了一名消防员的真实故事。",
    "The weather will be cool tomorrow with light rain in the afternoon.",
    "The museum opened a new exhibition of medieval tapestries this week.",
    "She trained for months before running her first marathon.",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Traffic on the highway was delayed by roadwork near the bridge.",
    "The library will be closed on Monday for the public holiday.",
    "Our cat sleeps on the windowsill every afternoon.",
    "The band played their old hits to a sold-out stadium.",
    "Farmers expect a good harvest after the spring rains.",
    "The hotel offers free breakfast and a view of the harbour.",
    "He repaired the old bicycle and gave it to his nephew.",
    "The school added a new chess club this semester.",
    "Volcanic eruptions can disrupt air travel for days.",
    "The novel follows a detective solving a case in Victorian London.",
    "Students planted trees along the river as a class project.",
    "The bakery sells fresh bread every morning at seven.",
)


_SENTENCES_PER_PARAGRAPH = 4
# Paragraphs of four sentences of one language each (the list is grouped by language).
_PARAGRAPHS = [
    BACKGROUND_PASSAGES[first : first + _SENTENCES_PER_PARAGRAPH]
    for first in range(0, len(BACKGROUND_PASSAGES), _SENTENCES_PER_PARAGRAPH)
]
_VECTORS: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def background_scores(embedder: Embedder, query_vector: np.ndarray) -> list[float]:
    """The query's score against every background paragraph, scored like a chunk, best first."""
    if embedder.identity not in _VECTORS:
        _VECTORS[embedder.identity] = _background_vectors(embedder)
    sentence_vectors, window_vectors = _VECTORS[embedder.identity]
    best_sentence = (sentence_vectors @ query_vector).reshape(len(_PARAGRAPHS), -1).max(axis=1)
    best_window = (window_vectors @ query_vector).reshape(len(_PARAGRAPHS), -1).max(axis=1)
    return sorted((float(score) for score in (best_sentence + best_window) / 2), reverse=True)


def _windows() -> list[str]:
    return [
        _join(paragraph[n : n + 2])
        for paragraph in _PARAGRAPHS
        for n in range(_SENTENCES_PER_PARAGRAPH - 1)
    ]


def _background_vectors(embedder: Embedder) -> tuple[np.ndarray, np.ndarray]:
    """The sentence and window vectors, embedded once per embedder identity and kept in the
    embedder's cache directory, so a process that asks one question does not embed 70 texts."""
    windows = _windows()
    cache_dir = getattr(embedder, "cache_dir", None)
    key = hashlib.sha256("\n".join([embedder.identity, *BACKGROUND_PASSAGES, *windows]).encode())
    path = Path(cache_dir) / f"background-{key.hexdigest()[:20]}.npy" if cache_dir else None
    if path is not None:
        try:
            cached = np.load(path)
            if cached.shape == (len(BACKGROUND_PASSAGES) + len(windows), embedder.dimension):
                return cached[: len(BACKGROUND_PASSAGES)], cached[len(BACKGROUND_PASSAGES) :]
        except (OSError, ValueError):
            pass
    vectors = embedder.embed_documents([*BACKGROUND_PASSAGES, *windows])
    if path is not None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(vectors, dtype=np.float32))
        write_atomically(path, buffer.getvalue(), "the background vectors")
    return vectors[: len(BACKGROUND_PASSAGES)], vectors[len(BACKGROUND_PASSAGES) :]


def _join(sentences: tuple[str, ...]) -> str:
    """Chinese sentences run on; English ones take a space."""
    return " ".join(sentences) if sentences[0].isascii() else "".join(sentences)
