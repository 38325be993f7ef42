"""Names across scripts: the other spellings of a question's names, learnt from the articles.

Chinese news writes most foreign names in Chinese characters (汪滔 for Alexandr Wang, 輝達 for
NVIDIA) and a question in English writes them in Latin letters, so neither BM25 nor (for rare
names) the embeddings connect the two. The table is a pure function of the chunk texts: it is
built beside the BM25 index (`index.lexical`) when an index run changes the chunks and cached
with it, so a question never pays for jieba's tagger:

- glosses: a Latin term in brackets right after Chinese text (`通義千問（Qwen）`, `輝達（NVIDIA）`)
  names the same thing in both scripts;
- romanisations: the pinyin of the Chinese person names jieba tags (`汪滔` -> `wang tao`), matched
  against a question's Latin name in full or, for a name of a Chinese family, by its surname.

Tagging is the slow part (jieba's tagger reads about 10k characters a second), so each chunk is
tagged once, when it is written (`name_mentions`, kept with the chunk in the store), and a table
is merged from those mentions: a reader, or a host that builds its BM25 cache from a Chroma
server, never tags the corpus again.

`expansions` returns the other spellings for the names of one query: a name the articles
already write as the question does needs none, and a surname shared by many people in the
articles says nothing, so it adds nothing.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from index.text import HAN, HAN_RUN, fold, jieba_tagger

# Chinese text (up to this many characters of it) followed by a bracketed Latin term.
_GLOSS = re.compile(rf"([{HAN}]{{2,12}})\s*[（(]\s*([A-Za-z][A-Za-z0-9 .&'+-]{{0,40}}?)\s*[)）]")
_GLOSS_HAN_CHARS = 6
_LATIN_NAME = re.compile(r"(?<![A-Za-z0-9])[A-Z][A-Za-z0-9]*(?:[ -][A-Z][A-Za-z0-9]*)*")
# jieba tag initials of words that end a name read backwards: particles (的), conjunctions,
# prepositions, adverbs, pronouns.
_NOT_IN_A_NAME = frozenset("ucpdr")
_PERSON_TAGS = frozenset({"nr", "nrfg", "nrt"})
# A surname matches only when at most this many of the articles' people carry it.
_MAX_SURNAME_NAMESAKES = 2


@dataclass
class AliasTable:
    """Other-script spellings: folded term -> terms, and pinyin -> Chinese person names."""

    glosses: dict[str, set[str]] = field(default_factory=dict)
    romanised: dict[str, Counter[str]] = field(default_factory=dict)
    surnames: dict[str, Counter[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, dict]:
        """A JSON-ready form, saved with the BM25 index it was built beside."""
        return {
            "glosses": {term: sorted(aliases) for term, aliases in self.glosses.items()},
            "romanised": {key: dict(names) for key, names in self.romanised.items()},
            "surnames": {key: dict(names) for key, names in self.surnames.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, dict]) -> AliasTable:
        return cls(
            glosses={term: set(aliases) for term, aliases in data["glosses"].items()},
            romanised={key: Counter(names) for key, names in data["romanised"].items()},
            surnames={key: Counter(names) for key, names in data["surnames"].items()},
        )

    def expansions(self, query: str, known: Iterable[str] = ()) -> list[str]:
        """Other-script spellings of the query's names; `known` holds folded words the articles
        already write (a Latin name among them needs no other spelling)."""
        known = set(known)
        return list(
            dict.fromkeys(
                spelling
                for name, spelled in self.spellings(query).items()
                if HAN_RUN.fullmatch(name) or not all(word in known for word in name.split())
                for spelling in spelled
            )
        )

    def spellings(self, query: str) -> dict[str, list[str]]:
        """Each name of the query the table spells in another script (folded: a Latin name
        such as "alexandr wang", or a Chinese term the query writes) -> those spellings."""
        found: dict[str, list[str]] = {}
        for name in latin_names(query):
            words = fold(name).split()
            spelled = [*sorted(self.glosses.get(fold(name), ())), *self._people(words)]
            if spelled:
                found.setdefault(" ".join(words), []).extend(spelled)
        for han in HAN_RUN.findall(fold(query)):
            for term, aliases in self.glosses.items():
                if len(term) > 1 and term in han:
                    found.setdefault(term, []).extend(sorted(aliases))
        return {name: list(dict.fromkeys(spelled)) for name, spelled in found.items()}

    def _people(self, words: list[str]) -> list[str]:
        """Chinese person names whose pinyin is the whole Latin name, in either order, or,
        failing that, whose surname is one of its words and is rare among the articles."""
        full = [" ".join(words), " ".join(reversed(words))]
        exact = [name for key in full for name in self.romanised.get(key, {})]
        if exact:
            return exact
        matches = [
            name
            for word in words
            if len(people := self.surnames.get(word, Counter())) <= _MAX_SURNAME_NAMESAKES
            for name, _ in people.most_common()
        ]
        return matches


def latin_names(text: str) -> list[str]:
    """Capitalised Latin words and runs of them ("Alexandr Wang"), bar a sentence's first word
    ("Who", "What") when it stands alone."""
    text = unicodedata.normalize("NFKC", text)
    names = []
    for match in _LATIN_NAME.finditer(text):
        name = match.group()
        at_start = not text[: match.start()].strip() or text[: match.start()].rstrip()[-1] in ".?!"
        if at_start:
            name = name.partition(" ")[2]
        if len(name) > 1:
            names.append(name)
    return names


@dataclass(frozen=True)
class NameMentions:
    """What one chunk gives the alias table: its glosses as (Latin, Chinese) pairs, both folded,
    and the Chinese person names jieba tags in it, folded, each time it names them."""

    glosses: tuple[tuple[str, str], ...] = ()
    people: tuple[str, ...] = ()

    def to_text(self) -> str:
        """A compact JSON form, stored with the chunk."""
        return json.dumps(
            [[list(pair) for pair in self.glosses], list(self.people)],
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_text(cls, text: str) -> NameMentions:
        """The mentions `to_text` wrote; ValueError when `text` is not that."""
        try:
            glosses, people = json.loads(text)
            return cls(
                tuple((str(latin), str(han)) for latin, han in glosses),
                tuple(str(name) for name in people),
            )
        except (TypeError, ValueError) as error:
            raise ValueError(f"not name mentions: {text[:40]!r}") from error


def name_mentions(text: str) -> NameMentions:
    """The glosses and person names of one chunk's text (with its title)."""
    text = unicodedata.normalize("NFKC", text)
    glosses = []
    for match in _GLOSS.finditer(text):
        han = _gloss_head(fold(match[1]))
        latin = fold(match[2].strip())
        if han and latin and not latin.isdigit():
            glosses.append((latin, han))
    return NameMentions(tuple(glosses), tuple(_person_names(text)))


def build_aliases(mentions: Iterable[NameMentions]) -> AliasTable:
    """The alias table of the chunks these mentions were read from."""
    table = AliasTable()
    people: Counter[str] = Counter()
    for mentioned in mentions:
        for latin, han in mentioned.glosses:
            table.glosses.setdefault(latin, set()).add(han)
            table.glosses.setdefault(han, set()).add(latin)
        people.update(mentioned.people)
    for name, count in people.items():
        syllables = _pinyin(name)
        if len(syllables) >= 2:
            table.romanised.setdefault(" ".join(syllables), Counter())[name] += count
            table.surnames.setdefault(syllables[0], Counter())[name] += count
    return table


def _gloss_head(han: str) -> str:
    """The term a gloss explains: the last word of the Chinese text before it, with the nouns
    (or, while shorter than three characters, any words but particles, conjunctions,
    prepositions, adverbs and pronouns) right before it, at most `_GLOSS_HAN_CHARS` characters
    (阿里巴巴旗下的通义千问 -> 通义千问, 缩减虚拟实境 -> 虚拟实境); a lone character joins only a
    lone character (官汪滔 -> 汪滔: the 官 ends 首席AI官, "chief AI officer")."""
    words = list(jieba_tagger().cut(han))
    if not words:
        return ""
    head = words[-1].word
    for word in reversed(words[:-1]):
        if len(head) + len(word.word) > _GLOSS_HAN_CHARS or word.flag[:1] in _NOT_IN_A_NAME:
            break
        if len(head) >= 3 and not word.flag.startswith("n"):
            break
        if len(word.word) == 1 < len(head):  # a title's last character (首席AI官汪滔 -> 汪滔)
            break
        head = word.word + head
    return head


def _person_names(text: str) -> list[str]:
    """The Chinese person names jieba tags in a text, folded to Simplified."""
    return [name for run in HAN_RUN.findall(fold(text)) for name in _people_in_run(run)]


@lru_cache(maxsize=1 << 16)
def _people_in_run(run: str) -> tuple[str, ...]:
    """The person names jieba tags in one run of Chinese characters. jieba tags each run on its
    own, so a run met again (a dateline, an edited article's unchanged paragraphs) is not
    tagged again."""
    return tuple(
        word
        for word, flag in jieba_tagger().cut(run)
        if flag in _PERSON_TAGS and 2 <= len(word) <= 4
    )


def _pinyin(name: str) -> list[str]:
    from pypinyin import Style, lazy_pinyin

    return [syllable for syllable in lazy_pinyin(name, style=Style.NORMAL) if syllable.isalpha()]
