"""RAG users: searches in the three modes over the seeded collection, some ingest.

A share of the requests (``rag_ingest_share`` of the plan) upserts a document of the
user's own (``wait=false``: answered once Kafka holds it, as a bulk loader would); the
rest search, evenly over ``vector``, ``keyword`` and ``hybrid``.
"""

from __future__ import annotations

import itertools
import random

from locust import task

from load import seed
from load.corpus import documents, query
from load.users.base import PLAN, RUN_ID, X0User

MODES = ("vector", "keyword", "hybrid")
_numbers = itertools.count(1)


class RagUser(X0User):
    """A RAG user (class ``rag``)."""

    caller_class = "rag"

    def prepare(self) -> None:
        self.number = next(_numbers)
        self.rng = random.Random(f"{RUN_ID}-{self.number}")  # noqa: S311 - not a secret
        self.ingested = 0

    @task
    def search_or_ingest(self) -> None:
        collection = seed.seeded().collection
        if self.rng.random() < PLAN.rag_ingest_share:
            self.ingested += 1
            document = documents(1, seed=self.rng.randrange(1 << 30))[0]
            document["id"] = f"user-{self.number}-{self.ingested}"
            self.call(
                "upsert_documents",
                path={"name": collection},
                body={"documents": [document]},
            )
            return
        mode = MODES[self.rng.randrange(len(MODES))]
        self.call(
            "search",
            variant=mode,
            path={"name": collection},
            body={"query": query(self.rng), "mode": mode, "k": 5},
            # Keyword search may rightly find nothing; the other modes always rank something.
            check=None if mode == "keyword" else _has_hits,
        )


def _has_hits(answer: dict[str, object]) -> str | None:
    return None if answer.get("hits") else "no hits in the seeded collection"
