"""Recursive character chunking that keeps offsets into the original document.

A chunk is never rewritten: ``document[chunk.start:chunk.end] == chunk.text``, so a
search hit can be highlighted in, or re-read from, the stored document. Offsets
count Python code points (not bytes, not UTF-16 units).

Each chunk starts at a non-space character and holds at most ``size`` characters.
Its end is the coarsest boundary that fills the chunk at least halfway: a
paragraph break (blank line), else a sentence end, else a space, else (a "word"
longer than the room left, such as a URL or base64) a hard cut that never
separates a combining mark from its base character. Requiring half a chunk keeps
a short heading from becoming a sliver chunk of its own; only when no boundary of
any kind lies in the back half is an earlier one used.

Consecutive chunks share up to ``overlap`` characters: the next chunk starts at the
first word that begins in the last ``overlap`` characters of the previous one
(inside one long word, ``overlap`` characters back), so that a sentence cut at a
boundary still has its context on both sides. Every chunk reaches past the end of
the one before, so the chunks of a document are at most about
``len(document) / (size - overlap)`` in number.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from x0_rag.errors import InvalidInput

DEFAULT_SIZE = 512
DEFAULT_OVERLAP = 50

# Where a chunk may end. A paragraph ends where a blank line (possibly holding spaces)
# begins; a sentence after terminal punctuation and closing quotes/brackets followed by
# space, or after CJK terminal punctuation, which takes no space; a word before a space.
_PARAGRAPH_END = re.compile(r"[^\S\n]*\n[^\S\n]*\n")
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u2019\u201d)\]]*(?=\s)|[\u3002\uff01\uff1f]+")
_WORD_END = re.compile(r"\s+")
_WORD_START = re.compile(r"(?<!\S)\S")

# Characters that must stay with the character before them: zero-width joiner and
# variation selectors (emoji sequences); combining marks are checked by category.
_JOINERS = frozenset("\u200d\ufe0e\ufe0f")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A slice of a document: ``text == document[start:end]``."""

    index: int
    start: int
    end: int
    text: str


class _Boundaries:
    """Sorted candidate end positions for each level, and word starts, found once."""

    def __init__(self, document: str) -> None:
        self.levels = (
            [match.start() for match in _PARAGRAPH_END.finditer(document)],
            [match.end() for match in _SENTENCE_END.finditer(document)],
            [match.start() for match in _WORD_END.finditer(document)],
        )
        self.word_starts = [match.start() for match in _WORD_START.finditer(document)]

    def best_end(self, low: int, limit: int) -> int | None:
        """The last boundary in ``(low, limit]`` of the coarsest level that has one."""
        for positions in self.levels:
            index = bisect_right(positions, limit) - 1
            if index >= 0 and positions[index] > low:
                return positions[index]
        return None

    def first_word_start(self, low: int, high: int) -> int | None:
        """The first word start in ``[low, high)``, if any."""
        index = bisect_left(self.word_starts, low)
        if index < len(self.word_starts) and self.word_starts[index] < high:
            return self.word_starts[index]
        return None


def _clings(document: str, position: int) -> bool:
    """Whether the character at ``position`` belongs to the one before it."""
    if position >= len(document):
        return False
    char = document[position]
    return (
        char in _JOINERS
        or unicodedata.combining(char) != 0
        or (position > 0 and document[position - 1] == "\u200d")
    )


def _safe_cut(document: str, position: int, floor: int) -> int:
    """Move a cut back so that no grapheme is split, but not to or below ``floor``."""
    cut = position
    while cut - 1 > floor and _clings(document, cut):
        cut -= 1
    return cut


def _skip_space(document: str, position: int) -> int:
    while position < len(document) and document[position].isspace():
        position += 1
    return position


def chunk_text(
    document: str, *, size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP
) -> list[Chunk]:
    """Split ``document`` into chunks of at most ``size`` characters; see the module doc.

    Empty and whitespace-only documents give no chunks. Raises ``InvalidInput``
    unless ``size >= 1`` and ``0 <= overlap < size``.
    """
    if size < 1 or not 0 <= overlap < size:
        raise InvalidInput(
            "chunking needs size >= 1 and 0 <= overlap < size",
            details={"size": size, "overlap": overlap},
        )
    content_end = len(document.rstrip())
    start = _skip_space(document, 0)
    if start >= content_end:
        return []

    boundaries = _Boundaries(document)
    chunks: list[Chunk] = []
    while True:
        limit = start + size
        if content_end <= limit:
            end = content_end
        else:
            # Every chunk must take in new text (the first character no chunk holds
            # yet), or overlap would make one boundary end chunk after chunk.
            floor = _skip_space(document, chunks[-1].end) if chunks else start
            cut = boundaries.best_end(max(start + size // 2, floor), limit)
            if cut is None:
                cut = boundaries.best_end(floor, limit)
            if cut is None:
                cut = _safe_cut(document, limit, floor)
            # Boundaries sit after the text they close; trailing spaces stay out.
            end = start + len(document[start:cut].rstrip())
        chunks.append(Chunk(len(chunks), start, end, document[start:end]))
        if end >= content_end:
            return chunks
        start = _next_start(document, boundaries, start=start, end=end, overlap=overlap, size=size)


def _next_start(
    document: str, boundaries: _Boundaries, *, start: int, end: int, overlap: int, size: int
) -> int:
    """Where the chunk after ``document[start:end]`` begins (always after ``start``)."""
    fresh = _skip_space(document, end)
    # Overlap only as far back as leaves room for the next new character.
    target = max(end - overlap, start + 1, fresh + 1 - size)
    if target >= end:
        return fresh
    word = boundaries.first_word_start(target, end)
    if word is not None:
        return word
    # The overlap lies inside one word longer than it: carry up to ``overlap`` characters,
    # moving forward (never back, which would carry more) off a combining mark.
    while target < end and _clings(document, target):
        target += 1
    return _skip_space(document, target)
