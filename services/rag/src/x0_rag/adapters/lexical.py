"""One collection's chunks for keyword search: BM25 by bm25s over analysed words.

Analysis is bm25s's own English pipeline, done here once per chunk so that the index
can be rebuilt without re-reading text: lower case, words of two or more word
characters (``(?u)\\b\\w\\w+\\b``), bm25s's English stop words dropped, then
Snowball English stemming (PyStemmer). A chunk is kept as the sequence of its
analysed words' ids (phrases are checked on it), in a vocabulary shared by the
collection.

Scoring is bm25s's (``method="lucene"``, ``k1=1.5``, ``b=0.75``) over the live chunks,
the same numbers ``bm25s.BM25().index(bm25s.tokenize(texts, stemmer=...))`` gives.
bm25s precomputes every (word, chunk) score, so it cannot add or remove a chunk:
:meth:`LexicalIndex.refresh` rebuilds the scorer from the kept word ids when the
chunks changed (no tokenising; measured by ``make eval``, docs/architecture.md), and
the index manager calls it before a batch's version counts as applied. A search
reads the scorer built last (an immutable object), so it never waits for a rebuild.

A search returns only chunks with a score above zero (at least one query word), at
most ``k``, best first, ties by chunk id; filters, ``+``/``-`` terms and phrases
restrict which chunks may rank (:mod:`x0_rag.domain.keywords`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

import bm25s
import numpy as np
import numpy.typing as npt
import Stemmer

from x0_rag.domain.keywords import Clause, KeywordQuery

# bm25s sets its logger to DEBUG on import: every rebuild would log a line.
logging.getLogger("bm25s").setLevel(logging.WARNING)

_WORD: Final = re.compile(r"(?u)\b\w\w+\b")
STOPWORDS: Final = frozenset(bm25s.stopwords.STOPWORDS_EN)
_stemmers = threading.local()

TermIds = npt.NDArray[np.int32]


def analyse(text: str) -> list[str]:
    """The analysed words of ``text``, in order (bm25s.tokenize's English pipeline)."""
    words = [word for word in _WORD.findall(text.lower()) if word not in STOPWORDS]
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:  # PyStemmer objects are not thread-safe: one per thread
        stemmer = _stemmers.english = Stemmer.Stemmer("english")
    stemmed: list[str] = stemmer.stemWords(words)
    return stemmed


@dataclass(frozen=True, slots=True)
class _Scorer:
    """A bm25s index over the chunks as they were at one refresh."""

    bm25: bm25s.BM25
    ids: npt.NDArray[np.int64]  # row -> chunk id
    terms: list[TermIds]  # row -> analysed word ids, in order
    vocabulary: dict[str, int]

    def rows_with(self, term: int) -> npt.NDArray[np.int64]:
        """Rows whose chunk holds ``term``."""
        scores = self.bm25.scores
        if term + 1 >= len(scores["indptr"]):
            return np.empty(0, np.int64)
        start, end = int(scores["indptr"][term]), int(scores["indptr"][term + 1])
        return np.asarray(scores["indices"][start:end], dtype=np.int64)


class LexicalIndex:
    """A collection's chunks as analysed words, and the BM25 scorer built from them.

    Writes (``upsert``, ``delete``, ``refresh``) come from one thread at a time (the
    index manager's); ``search`` may run beside them from any thread.
    """

    def __init__(self) -> None:
        self._vocabulary: dict[str, int] = {}
        self._chunks: dict[int, TermIds] = {}
        self._scorer: _Scorer | None = None
        self._stale = False

    def __len__(self) -> int:
        return len(self._chunks)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self._chunks

    @property
    def stale(self) -> bool:
        """Changed since the scorer was built (``refresh`` rebuilds it)."""
        return self._stale

    def ids(self) -> set[int]:
        """Chunk ids held."""
        return set(self._chunks)

    def upsert(self, texts: Mapping[int, str]) -> None:
        """Insert or replace chunks by id (searchable after the next ``refresh``)."""
        for chunk_id, text in texts.items():
            self._chunks[int(chunk_id)] = self._term_ids(analyse(text))
        self._stale = self._stale or bool(texts)

    def delete(self, ids: Iterable[int]) -> None:
        """Remove chunks; unknown ids are ignored."""
        for chunk_id in ids:
            if self._chunks.pop(int(chunk_id), None) is not None:
                self._stale = True

    def refresh(self) -> bool:
        """Rebuild the scorer if anything changed; returns whether it did."""
        if not self._stale and (self._scorer is not None or not self._chunks):
            return False
        ids = np.fromiter(sorted(self._chunks), dtype=np.int64, count=len(self._chunks))
        terms = [self._chunks[int(chunk_id)] for chunk_id in ids]
        scorer = None
        if len(ids):
            bm25 = bm25s.BM25()
            # A copy: bm25s may add an empty token to the vocabulary it is given.
            bm25.index(
                ([t.tolist() for t in terms], dict(self._vocabulary)),
                create_empty_token=False,
                show_progress=False,
            )
            scorer = _Scorer(bm25, ids, terms, dict(self._vocabulary))
        self._scorer, self._stale = scorer, False
        return True

    def search(
        self, query: KeywordQuery, k: int, *, accept: Callable[[int], bool] | None = None
    ) -> list[tuple[int, float]]:
        """Up to ``k`` ``(chunk id, BM25 score)``, best first, with a score above zero."""
        scorer = self._scorer
        if scorer is None or k < 1:
            return []
        scored: list[int] = []
        allowed = np.ones(len(scorer.ids), dtype=bool)
        for clause in query.clauses:
            terms = [scorer.vocabulary.get(word, -1) for word in analyse(clause.text)]
            if clause.occurrence != "must_not":
                scored += [term for term in terms if term >= 0]
            if clause.occurrence == "should" or not terms:
                continue
            rows = _rows_matching(scorer, clause, terms)
            if clause.occurrence == "must":
                keep = np.zeros_like(allowed)
                keep[rows] = True
                allowed &= keep
            else:
                allowed[rows] = False
        if not scored or not allowed.any():
            return []
        if accept is not None:
            allowed &= np.fromiter((accept(int(i)) for i in scorer.ids), bool, len(scorer.ids))
        scores = scorer.bm25.get_scores(scored, weight_mask=allowed.astype(np.float32))
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > k:
            candidates = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        order = sorted(candidates.tolist(), key=lambda row: (-scores[row], scorer.ids[row]))
        return [(int(scorer.ids[row]), float(scores[row])) for row in order]

    # -- snapshots --------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The chunks' word ids and the vocabulary, as one ``.npz`` file's content."""
        ids = np.fromiter(sorted(self._chunks), dtype=np.int64, count=len(self._chunks))
        parts = [self._chunks[int(chunk_id)] for chunk_id in ids]
        words = sorted(self._vocabulary, key=self._vocabulary.__getitem__)
        buffer = io.BytesIO()
        np.savez(
            buffer,
            ids=ids,
            lengths=np.array([len(part) for part in parts], dtype=np.int64),
            terms=np.concatenate(parts) if parts else np.empty(0, np.int32),
            # Words never hold a newline (they are runs of word characters).
            vocabulary=np.frombuffer("\n".join(words).encode(), dtype=np.uint8),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, content: bytes) -> LexicalIndex:
        """The index ``to_bytes`` wrote, refreshed; ``ValueError`` when it is not one."""
        try:
            with np.load(io.BytesIO(content), allow_pickle=False) as stored:
                ids, lengths = stored["ids"], stored["lengths"]
                terms, packed = stored["terms"], stored["vocabulary"]
            words = packed.tobytes().decode().split("\n") if len(packed) else []
        except (OSError, KeyError, EOFError, ValueError) as error:  # UnicodeDecodeError too
            raise ValueError(f"not a lexical index: {error}") from error
        if len(ids) != len(lengths) or int(lengths.sum()) != len(terms):
            raise ValueError("lexical index arrays disagree")
        if len(terms) and (int(terms.min()) < 0 or int(terms.max()) >= len(words)):
            raise ValueError("lexical index names words outside its vocabulary")
        index = cls()
        index._vocabulary = {word: number for number, word in enumerate(words)}
        ends = np.cumsum(lengths)
        for chunk_id, start, end in zip(
            ids.tolist(), (ends - lengths).tolist(), ends.tolist(), strict=True
        ):
            index._chunks[chunk_id] = terms[start:end].astype(np.int32)
        index._stale = True
        index.refresh()
        return index

    def digest(self) -> str:
        """SHA-256 of :meth:`to_bytes` (tests compare indexes with it)."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def _term_ids(self, words: list[str]) -> TermIds:
        vocabulary = self._vocabulary
        for word in words:
            if word not in vocabulary:
                vocabulary[word] = len(vocabulary)
        return np.fromiter((vocabulary[word] for word in words), np.int32, len(words))


def _rows_matching(scorer: _Scorer, clause: Clause, terms: list[int]) -> npt.NDArray[np.int64]:
    """Rows holding the clause's word, or every word of its phrase in that order."""
    if any(term < 0 for term in terms):
        return np.empty(0, np.int64)
    rows = scorer.rows_with(terms[0])
    for term in terms[1:]:
        rows = np.intersect1d(rows, scorer.rows_with(term), assume_unique=True)
    if not clause.phrase or len(terms) == 1:
        return rows
    return np.fromiter((row for row in rows.tolist() if _holds(scorer.terms[row], terms)), np.int64)


def _holds(sequence: TermIds, phrase: list[int]) -> bool:
    """Whether ``phrase`` occurs as consecutive items of ``sequence``."""
    width = len(phrase)
    if len(sequence) < width:
        return False
    starts = np.flatnonzero(sequence[: len(sequence) - width + 1] == phrase[0])
    return any(all(sequence[s + j] == phrase[j] for j in range(1, width)) for s in starts.tolist())
