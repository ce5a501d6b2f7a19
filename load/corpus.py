"""A small synthetic corpus and queries over it, made here (nothing is downloaded).

Sentences about the subjects a mesh operator writes notes on, drawn from a seeded
random generator, so every run indexes the same texts and asks comparable queries.
"""

from __future__ import annotations

import random

SUBJECTS = (
    "the mesh gateway",
    "a relay node",
    "the key rotation job",
    "the X-Wing handshake",
    "the ML-KEM session",
    "the telemetry pipeline",
    "the search index",
    "the PostgreSQL replica",
    "the Redis cache",
    "the Kafka broker",
    "a field router",
    "the backup link",
)
VERBS = (
    "dropped packets during",
    "recovered quickly after",
    "reported high latency on",
    "was upgraded before",
    "needs a new certificate for",
    "signed every beacon of",
    "lost its neighbour after",
    "rebalanced partitions during",
)
OBJECTS = (
    "the storm on Tuesday",
    "the night maintenance window",
    "a firmware rollout",
    "the quarterly key ceremony",
    "a power cut in the north sector",
    "heavy rain and interference",
    "the migration to post-quantum keys",
    "a surge of sensor readings",
)
# Words of the corpus a query is made of (keyword search needs them to find anything).
KEYWORDS = sorted(
    {
        word.strip(".,").lower()
        for phrase in SUBJECTS + VERBS + OBJECTS
        for word in phrase.split()
        if len(word) > 3 and word not in {"the", "during", "after", "before", "every"}
    }
)


def documents(count: int, *, seed: int = 7, prefix: str = "doc") -> list[dict[str, object]]:
    """``count`` documents of two to four sentences, with their subject as metadata."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible corpus, not a secret
    docs = []
    for index in range(count):
        subject = rng.choice(SUBJECTS)
        sentences = [
            f"{subject.capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)}."
            for _ in range(rng.randint(2, 4))
        ]
        docs.append(
            {
                "id": f"{prefix}-{index}",
                "text": " ".join(sentences),
                "metadata": {"subject": subject, "index": index},
            }
        )
    return docs


def query(rng: random.Random) -> str:
    """What an operator might type: one to three words of the corpus, half the time as
    alternatives (``storm or firmware``, websearch syntax). There are enough of them that
    the service's query cache sees few repeats in a short run."""
    words = rng.sample(KEYWORDS, rng.randint(1, 3))
    return " or ".join(words) if rng.random() < 0.5 else " ".join(words)
