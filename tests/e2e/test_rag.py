"""RAG through the gateway, Kafka and a real RAG worker with the real model."""

from __future__ import annotations

import uuid

import httpx
import pytest

pytestmark = pytest.mark.e2e

DOCUMENTS = [
    {
        "id": "weather",
        "text": "The weather is lovely today. It's so sunny outside!",
        "metadata": {"lang": "en", "topic": "weather"},
    },
    {
        "id": "stadium",
        "text": "He drove to the stadium to watch the football match.",
        "metadata": {"lang": "en", "topic": "sport"},
    },
    {
        "id": "files",
        "text": "Use open() with a context manager to read a file in Python.",
        "metadata": {"lang": "en", "topic": "python"},
    },
]


async def new_collection(gateway: httpx.AsyncClient) -> str:
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    response = await gateway.post("/v1/rag/collections", json={"name": name})
    assert response.status_code == 201, response.text
    return name


async def test_ingest_then_search_in_every_mode(gateway: httpx.AsyncClient) -> None:
    name = await new_collection(gateway)
    accepted = await gateway.post(
        f"/v1/rag/collections/{name}/documents", json={"documents": DOCUMENTS}
    )
    assert accepted.status_code == 202, accepted.text
    version = accepted.json()["version"]

    for mode in ("vector", "keyword", "hybrid"):
        response = await gateway.post(
            f"/v1/rag/collections/{name}/search",
            json={"query": "sunny weather", "k": 2, "mode": mode, "min_version": version},
        )
        assert response.status_code == 200, response.text
        hits = response.json()["hits"]
        assert hits, mode
        assert hits[0]["document_id"] == "weather", (mode, hits)
        document_text = DOCUMENTS[0]["text"]
        assert document_text[hits[0]["start"] : hits[0]["end"]] == hits[0]["text"]

    filtered = await gateway.post(
        f"/v1/rag/collections/{name}/search",
        json={
            "query": "sunny weather",
            "k": 10,
            "mode": "vector",
            "filter": {"topic": {"in": ["sport", "python"]}},
        },
    )
    assert {h["document_id"] for h in filtered.json()["hits"]} <= {"stadium", "files"}

    info = (await gateway.get(f"/v1/rag/collections/{name}")).json()
    assert info["documents"] == 3
    assert info["chunks"] >= 3


async def test_wait_true_answers_once_searchable_and_delete_removes(
    gateway: httpx.AsyncClient,
) -> None:
    name = await new_collection(gateway)
    waited = await gateway.post(
        f"/v1/rag/collections/{name}/documents",
        params={"wait": "true"},
        json={"documents": DOCUMENTS[2:]},
    )
    assert waited.status_code == 200, waited.text
    found = await gateway.post(
        f"/v1/rag/collections/{name}/search", json={"query": "read a file", "mode": "vector"}
    )
    assert [h["document_id"] for h in found.json()["hits"]] == ["files"]

    document = await gateway.get(f"/v1/rag/collections/{name}/documents/files")
    assert document.status_code == 200
    assert document.json()["text"] == DOCUMENTS[2]["text"]

    deleted = await gateway.delete(
        f"/v1/rag/collections/{name}/documents/files", params={"wait": "true"}
    )
    assert deleted.status_code == 200, deleted.text
    after = await gateway.post(
        f"/v1/rag/collections/{name}/search",
        json={"query": "read a file", "mode": "hybrid", "min_version": deleted.json()["version"]},
    )
    assert after.json()["hits"] == []
    missing = await gateway.get(f"/v1/rag/collections/{name}/documents/files")
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/rag/collections/no-such-collection/search", {"query": "x"}, 404),
        (
            "/v1/rag/collections/no-such-collection/documents",
            {"documents": [{"id": "a", "text": "b"}]},
            404,
        ),
        ("/v1/rag/collections/any/search", {"query": ""}, 422),
        ("/v1/rag/collections/any/search", {"query": "x", "k": 0}, 422),
        ("/v1/rag/collections/any/search", {"query": "x", "k": 101}, 422),
        (
            "/v1/rag/collections/any/documents",
            {"documents": [{"id": "a", "text": "x" * 200_001}]},
            413,
        ),
        (
            "/v1/rag/collections/any/documents",
            {"documents": [{"id": str(i), "text": "x"} for i in range(101)]},
            413,
        ),
    ],
)
async def test_bad_rag_input_is_a_clear_problem(
    gateway: httpx.AsyncClient, path: str, body: dict, status: int
) -> None:
    response = await gateway.post(path, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_malformed_filter_is_a_client_error(gateway: httpx.AsyncClient) -> None:
    name = await new_collection(gateway)
    response = await gateway.post(
        f"/v1/rag/collections/{name}/search",
        json={"query": "x", "filter": {"topic": {"regex": ".*"}}},
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_input"
