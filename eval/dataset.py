"""The evaluation set: documents, queries with their one right answer, dev/test split.

Built from :func:`eval.manpages.collect` each run (about ten seconds); nothing is
committed but the code. ``QUERIES`` queries are drawn from the pages whose query has one
right answer, in SHA-256 order of the page id; each goes to ``dev`` or ``test`` by
the parity of that digest. The documents are every kept page.

``slice_of`` is the small fixed subset the CI regression test runs: the first
``queries`` test queries, their pages, and other pages (SHA-256 order) up to
``documents``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from eval.manpages import Page, answerable, collect, digest

QUERIES: Final = 1000
Split = Literal["dev", "test"]


@dataclass(frozen=True, slots=True)
class Query:
    """A query and the id of the page that answers it."""

    text: str
    answer: str
    split: Split


@dataclass(frozen=True, slots=True)
class EvalSet:
    """Documents (by id, sorted) and queries."""

    documents: dict[str, str]
    queries: list[Query]

    def split(self, name: Split) -> list[Query]:
        """The queries of one split."""
        return [query for query in self.queries if query.split == name]


def build(pages: list[Page] | None = None, *, queries: int = QUERIES) -> EvalSet:
    """The full set (see the module's rules)."""
    pages = collect() if pages is None else pages
    chosen = sorted(answerable(pages), key=lambda page: digest(page.id))[:queries]
    return EvalSet(
        documents={page.id: page.text for page in pages},
        queries=[
            Query(page.query, page.id, "dev" if digest(page.id) % 2 == 0 else "test")
            for page in chosen
        ],
    )


def slice_of(full: EvalSet, *, documents: int, queries: int) -> EvalSet:
    """A fixed small subset: ``queries`` test queries over ``documents`` pages."""
    asked = full.split("test")[:queries]
    keep = {query.answer for query in asked}
    for page_id in sorted(full.documents, key=digest):
        if len(keep) >= documents:
            break
        keep.add(page_id)
    return EvalSet(
        documents={page_id: full.documents[page_id] for page_id in sorted(keep)},
        queries=asked,
    )
