"""Recursive chunking: offsets always slice the original, sizes, overlap, preferences."""

from __future__ import annotations

import itertools
import random
import unicodedata

import pytest

from x0_rag.domain import Chunk, InvalidInput, chunk_text

pytestmark = pytest.mark.unit

WORDS = [
    "kafka", "index", "vector", "the", "a", "of", "post-quantum", "lattice", "é", "naïve",
    "Straße", "日本語", "テキスト", "العربية", "ελληνικά", "🙂", "👩‍👩‍👧", "🇺🇦", "e\u0301",
    "a\u0308\u0301", "x" * 700, "https://example.org/" + "q" * 300, "\u200b", "ok",
]  # fmt: skip
SEPARATORS = [" ", " ", " ", ". ", "! ", "? ", "。", "\n", "\n\n", " \n \n ", "\t", "\r\n\r\n"]


def _document(rng: random.Random) -> str:
    parts = [rng.choice(["", " ", "\n\n", "\t"])]
    for _ in range(rng.randint(0, 400)):
        parts += [rng.choice(WORDS), rng.choice(SEPARATORS)]
    return "".join(parts)


def _check(document: str, chunks: list[Chunk], size: int, overlap: int) -> None:
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert document[chunk.start : chunk.end] == chunk.text
        assert 0 < len(chunk.text) <= size
        assert not chunk.text[0].isspace()
        assert not chunk.text[-1].isspace()
    for before, after in itertools.pairwise(chunks):
        assert before.start < after.start
        assert before.end < after.end
        # Overlap at most `overlap` characters; a gap holds only whitespace.
        assert before.end - after.start <= overlap
        assert document[before.end : after.start].strip() == ""
    # Everything but whitespace is in some chunk.
    covered = [False] * len(document)
    for chunk in chunks:
        covered[chunk.start : chunk.end] = [True] * (chunk.end - chunk.start)
    assert all(covered[i] or char.isspace() for i, char in enumerate(document))


@pytest.mark.parametrize("seed", range(40))
def test_offsets_and_invariants_on_varied_documents(seed: int) -> None:
    rng = random.Random(seed)
    document = _document(rng)
    size = rng.choice([1, 2, 7, 40, 100, 512, 2000])
    overlap = rng.choice([0, 1, size // 3, size - 1]) if size > 1 else 0
    chunks = chunk_text(document, size=size, overlap=overlap)
    _check(document, chunks, size, overlap)
    assert chunk_text(document, size=size, overlap=overlap) == chunks  # deterministic


@pytest.mark.parametrize("document", ["", " ", "\n\n\t \r\n", "\u3000\u2003"])
def test_empty_and_whitespace_documents_give_no_chunks(document: str) -> None:
    assert chunk_text(document) == []


def test_short_document_is_one_chunk_without_surrounding_space() -> None:
    document = "\n  Hello, world.  \n"
    assert chunk_text(document) == [Chunk(0, 3, 16, "Hello, world.")]


def test_long_word_is_cut_hard_with_exact_overlap() -> None:
    document = "x" * 1200
    chunks = chunk_text(document, size=512, overlap=50)
    assert [(chunk.start, chunk.end) for chunk in chunks] == [(0, 512), (462, 974), (924, 1200)]


def test_paragraphs_are_preferred() -> None:
    first = " ".join(["First paragraph sentence."] * 12)  # 311 characters
    second = " ".join(["Second paragraph sentence."] * 12)
    document = f"{first}\n\n{second}"
    chunks = chunk_text(document, size=512, overlap=50)
    assert chunks[0].text == first
    # The next chunk carries the first's last whole words (<= 50 characters).
    assert chunks[1].text.endswith(second)
    carried = chunks[1].text[: -len(second)].rstrip()
    assert first.endswith(carried)
    assert 0 < len(carried) <= 50
    assert carried.split()[0] in first.split()


def test_sentences_are_preferred_over_words() -> None:
    document = " ".join(f"Sentence {i} has a few words in it." for i in range(100))
    chunks = chunk_text(document, size=200, overlap=0)
    assert all(chunk.text.endswith(".") for chunk in chunks)
    assert all(chunk.text.startswith("Sentence") for chunk in chunks)
    assert all(len(chunk.text) > 100 for chunk in chunks[:-1])


def test_a_short_heading_does_not_become_its_own_chunk() -> None:
    body = " ".join(["word"] * 300)
    chunks = chunk_text(f"Title\n\n{body}", size=100, overlap=10)
    assert chunks[0].text.startswith("Title\n\nword word")
    assert len(chunks[0].text) > 50


def test_cuts_never_separate_combining_marks() -> None:
    document = "e\u0301" * 500  # 1000 code points, 500 graphemes, no spaces
    for size, overlap in [(101, 0), (101, 33), (10, 3), (3, 0)]:
        chunks = chunk_text(document, size=size, overlap=overlap)
        _check(document, chunks, size, overlap)
        for chunk in chunks:
            assert unicodedata.combining(chunk.text[0]) == 0
            assert chunk.text[-1] == "\u0301"


def test_emoji_zwj_sequences_stay_whole() -> None:
    family = "👩\u200d👩\u200d👧"
    document = family * 100
    for chunk in chunk_text(document, size=20, overlap=4):
        assert chunk.text.startswith("👩")
        assert chunk.text.endswith("👧")


def test_windows_newlines_and_cjk_sentences() -> None:
    document = "第一句。第二句。第三句。" * 30 + "\r\n\r\nEnd."
    chunks = chunk_text(document, size=50, overlap=5)
    _check(document, chunks, 50, 5)
    assert all(chunk.text.endswith(("。", "End.")) for chunk in chunks)


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (-1, 0), (10, 10), (10, -1), (10, 11)])
def test_bad_parameters(size: int, overlap: int) -> None:
    with pytest.raises(InvalidInput):
        chunk_text("text", size=size, overlap=overlap)
