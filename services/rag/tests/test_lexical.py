"""LexicalIndex: bm25s's own scores, the query syntax, filters, deletes and snapshots."""

from __future__ import annotations

import bm25s
import pytest
import Stemmer

from x0_rag.adapters.lexical import LexicalIndex, analyse
from x0_rag.domain.keywords import KeywordQuery

pytestmark = pytest.mark.unit

TEXTS = {
    10: "Apache Kafka stores streams of records in partitioned, replicated logs.",
    11: "PostgreSQL ranks full-text matches with ts_rank_cd over tsvector columns.",
    12: "Young cats grow quickly and need a diet rich in meat.",
    13: "Invoice 4471: Kitten brand printer toner, billed to accounting.",
    14: "A printer prints pages; toner is what a laser printer prints with.",
    15: "Consumer groups share the partitions of a Kafka topic between consumers.",
}


def built(texts: dict[int, str] = TEXTS) -> LexicalIndex:
    index = LexicalIndex()
    index.upsert(texts)
    index.refresh()
    return index


def search(index: LexicalIndex, query: str, k: int = 10) -> list[int]:
    return [chunk_id for chunk_id, _ in index.search(KeywordQuery.parse(query), k)]


def test_analysis_and_scores_are_bm25s_own() -> None:
    stemmer = Stemmer.Stemmer("english")
    text = "The consumers were consuming Kafka's partitions quickly"
    expected = bm25s.tokenize([text], stemmer=stemmer, return_ids=False, show_progress=False)
    assert analyse(text) == expected[0]
    ids = list(TEXTS)
    reference = bm25s.BM25()
    reference.index(
        bm25s.tokenize([TEXTS[i] for i in ids], stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    index = built()
    for query in ("kafka partitions consumers", "printer toner", "cats meat diet"):
        tokens = bm25s.tokenize([query], stemmer=stemmer, show_progress=False)
        found, scores = reference.retrieve(tokens, k=len(ids), show_progress=False)
        want = [(ids[int(i)], float(s)) for i, s in zip(found[0], scores[0], strict=True) if s > 0]
        got = index.search(KeywordQuery.parse(query), len(ids))
        assert [i for i, _ in got] == [i for i, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-5)


def test_or_semantics_returns_the_best_k_whatever_the_overlap() -> None:
    index = built()
    # No chunk holds all three words; each holding one still ranks.
    assert set(search(index, "kafka kitten meat")) == {10, 15, 13, 12}
    assert len(search(index, "kafka kitten meat", k=2)) == 2
    assert search(index, "the and of") == []  # stop words only
    assert search(index, "zebra") == []


def test_phrases_required_and_excluded_terms() -> None:
    index = built()
    assert search(index, '"printer toner"') == [13]
    assert search(index, '"toner printer"') == []
    assert search(index, '"laser printers"') == [14]  # stemmed on both sides
    assert search(index, "+kafka consumer") == [15, 10]
    assert search(index, "printer -kitten") == [14]
    assert search(index, 'printer -"printer toner"') == [14]
    assert search(index, "-kafka") == []  # nothing to rank by
    assert search(index, "+zebra kafka") == []


def test_filters_deletes_and_replacements() -> None:
    index = built()
    assert search(index, "printer") == [14, 13]
    assert [
        i for i, _ in index.search(KeywordQuery.parse("printer"), 5, accept=lambda i: i == 13)
    ] == [13]
    index.delete([14, 999])
    assert index.stale
    assert search(index, "printer") == [14, 13]  # the last refresh answers until the next
    index.refresh()
    assert search(index, "printer") == [13]
    index.upsert({13: "Nothing about office supplies any more."})
    index.refresh()
    assert search(index, "printer") == []
    assert search(index, "office supplies") == [13]


def test_a_snapshot_round_trip_answers_the_same() -> None:
    index = built()
    index.delete([12])
    index.refresh()
    loaded = LexicalIndex.from_bytes(index.to_bytes())
    assert loaded.ids() == index.ids()
    for query in ("kafka consumer", '"printer toner"', "cats", "printer -kitten"):
        assert loaded.search(KeywordQuery.parse(query), 10) == index.search(
            KeywordQuery.parse(query), 10
        )
    with pytest.raises(ValueError, match="lexical index"):
        LexicalIndex.from_bytes(b"not an npz file")


def test_the_query_parser_never_fails() -> None:
    parsed = KeywordQuery.parse('kafka +lag -zookeeper "consumer group" -"old api" "unclosed')
    assert [(c.text, c.occurrence, c.phrase) for c in parsed.clauses] == [
        ("kafka", "should", False),
        ("lag", "must", False),
        ("zookeeper", "must_not", False),
        ("consumer group", "must", True),
        ("old api", "must_not", True),
        ("unclosed", "must", True),
    ]
    assert search(built(), '"" + - ') == []  # nothing to rank by, never an error
