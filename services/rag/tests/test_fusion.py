"""Reciprocal rank fusion: hand-computed scores, duplicates, ties, weights."""

from __future__ import annotations

import itertools

import pytest

from x0_rag.domain import InvalidInput, reciprocal_rank_fusion
from x0_rag.domain.fusion import RRF_K

pytestmark = pytest.mark.unit


def test_scores_by_hand() -> None:
    vector = [10, 20, 30]
    keyword = [30, 10, 40]
    fused = reciprocal_rank_fusion([vector, keyword])
    assert [hit.id for hit in fused] == [10, 30, 20, 40]
    expected = {
        10: 1 / 61 + 1 / 62,  # 0.032522...
        30: 1 / 63 + 1 / 61,  # 0.032266...
        20: 1 / 62,
        40: 1 / 63,
    }
    for hit in fused:
        assert hit.score == pytest.approx(expected[hit.id], rel=1e-15)
    assert fused[0].score == pytest.approx(0.0325224749, abs=1e-10)
    assert [hit.ranks for hit in fused] == [(1, 2), (3, 1), (2, None), (None, 3)]
    assert RRF_K == 60


def test_single_list_keeps_its_order() -> None:
    fused = reciprocal_rank_fusion([[5, 3, 9]])
    assert [hit.id for hit in fused] == [5, 3, 9]
    assert [hit.score for hit in fused] == [1 / 61, 1 / 62, 1 / 63]


def test_duplicate_in_one_list_counts_once_at_best_rank() -> None:
    fused = reciprocal_rank_fusion([[7, 8, 7], [8]])
    scores = {hit.id: hit.score for hit in fused}
    assert scores == {7: 1 / 61, 8: 1 / 62 + 1 / 61}
    assert fused[0].id == 8


def test_ties_break_by_best_rank_then_list_order() -> None:
    # 1 and 2 swap places: equal scores, both best rank 1; list 0 wins the tie.
    assert [hit.id for hit in reciprocal_rank_fusion([[1, 2], [2, 1]])] == [1, 2]
    assert [hit.id for hit in reciprocal_rank_fusion([[2, 1], [1, 2]])] == [2, 1]
    # 6 (rank 1 in list 0 only) and 5 (rank 1 in list 1 only) tie below 9 (2 + 2).
    fused = reciprocal_rank_fusion([[6, 9], [5, 9]])
    assert [hit.id for hit in fused] == [9, 6, 5]


def test_equal_rank_multisets_tie_exactly_whatever_the_list_order() -> None:
    lists = [[1, 2, 3], [2, 3, 1], [3, 1, 2]]
    for permutation in itertools.permutations(lists):
        fused = reciprocal_rank_fusion(list(permutation))
        # Every id holds ranks {1, 2, 3}: the scores are bit-identical (fsum).
        assert len({hit.score for hit in fused}) == 1
        # The winner is the id ranked first by the first list.
        assert fused[0].id == permutation[0][0]


def test_weights_and_k_and_limit() -> None:
    fused = reciprocal_rank_fusion([[1, 2], [2, 1]], weights=[2.0, 1.0], k=0)
    assert [(hit.id, hit.score) for hit in fused] == [(1, 2.0 + 0.5), (2, 1.0 + 1.0)]
    assert len(reciprocal_rank_fusion([[1, 2, 3]], limit=2)) == 2
    assert reciprocal_rank_fusion([]) == []
    assert reciprocal_rank_fusion([[], []]) == []


@pytest.mark.parametrize(
    "kwargs",
    [{"k": -1}, {"weights": [1.0]}, {"weights": [1.0, -1.0]}, {"limit": -1}],
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        reciprocal_rank_fusion([[1], [2]], **kwargs)  # type: ignore[arg-type]
