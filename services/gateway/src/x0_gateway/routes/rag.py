"""The RAG routes that do more than forward: ingest through Kafka, optionally waiting
for the outcome, and version tokens checked first.

A write is checked (the request model refuses what the worker would: NUL characters,
unpaired surrogates, blank text, over-long ids, unstorable metadata; 422 naming the
document's index, nothing published), then published to ``x0.rag.ingest``: 202 with its
version token once Kafka holds it (``acks=all``). With ``wait=true`` the answer is the
truth, per document, read from the writer's recorded outcome (``Rag.INGEST_OUTCOME``,
any rag replica answers from PostgreSQL) once a replica has applied the version:

====== ====================================================================
200    applied: stored and searchable on a replica (``status: applied``)
422    refused: nothing changed (problem ``ingest_refused``; ``details.results``
       gives each document's reason, e.g. ``collection_deleted``)
202    pending: no outcome before the deadline (the token still orders it;
       ``GET .../ingests/{version}`` tells later)
====== ====================================================================

A message is applied whole or not at all, so every document of a request shares one
status (there is no 207). A ``collection_not_found`` refusal of a request whose
collection the gateway saw before publishing is reported as ``collection_deleted``.

A search's ``min_version`` (and an outcome's version) that the ingest log never issued
is a 400 at once (a worker would wait for it in vain and answer 504).
"""

import logging
import time
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

from fastapi import Path, Query, Response
from pydantic import ValidationError

from x0_common.contract import Operation, Rag
from x0_common.errors import (
    DeadlineExceeded,
    InvalidInput,
    NotFound,
    UnknownMessageType,
    ValidationFailed,
)
from x0_common.events import rag as r
from x0_common.events.names import DocumentId
from x0_common.kafka import Requester
from x0_common.principal import Principal
from x0_gateway.auth.guard import PrincipalDep
from x0_gateway.deps import RequesterDep, SettingsDep
from x0_gateway.routing import (
    Edge,
    Endpoint,
    carried_fields,
    forwarding_endpoint,
    path_parameter,
    request_of,
)

logger = logging.getLogger(__name__)

WaitQuery = Annotated[
    bool,
    Query(
        description="answer with the outcome: 200 applied and searchable, 422 refused"
        " (each document's reason), 202 not known before the deadline"
    ),
]
# The path names one document; the message carries a list of ids.
DocumentPath = Annotated[DocumentId, Path()]


class IngestRefused(ValidationFailed):
    """The worker refused the ingest: nothing was applied (``details.results`` says why)."""

    code: ClassVar[str] = "ingest_refused"
    http_status: ClassVar[int] = 422


def document_outcomes(
    ids: Sequence[str], outcome: r.IngestOutcome, *, collection_seen: bool
) -> list[r.DocumentOutcome]:
    """Each document's share of the message's ``outcome`` (``ids`` in request order).

    A refusal that one document caused is that document's reason; the others of the
    request are ``batch_refused`` (applied whole or not at all).
    """
    refusal = outcome.refusal
    if refusal is not None and collection_seen and refusal.code == "collection_not_found":
        refusal = r.Refusal(
            code="collection_deleted",
            message="the collection was deleted after this request was accepted,"
            " before the ingest was applied",
        )
    results = []
    for index, document_id in enumerate(ids):
        reason = refusal
        if refusal is not None and refusal.document_id not in {None, document_id}:
            reason = r.Refusal(
                code="batch_refused",
                message=f"not applied: document {refusal.document_id!r} of the same request"
                f" was refused ({refusal.code}); a request is applied whole or not at all",
                document_id=refusal.document_id,
            )
        results.append(
            r.DocumentOutcome(index=index, id=document_id, status=outcome.status, reason=reason)
        )
    return results


# Below this, another version wait is not worth a round trip.
_MIN_WAIT_SECONDS = 0.05


def _wait_ms(remaining: float) -> int:
    return max(1, min(60_000, int(remaining * 1000)))


async def awaited_outcome(
    requester: Requester,
    message: r.UpsertDocuments | r.DeleteDocuments,
    version: str,
    *,
    timeout: float,
    principal: Principal,
) -> r.IngestOutcome:
    """The message's outcome once a replica applied ``version``; ``pending`` when none
    is known within ``timeout`` seconds."""
    give_up_at = time.monotonic() + timeout
    pending = r.IngestOutcome(version=version, collection=message.collection, status="pending")
    waited, asked = Rag.VERSION_WAIT, Rag.INGEST_OUTCOME
    try:
        # A worker bounds each wait (X0_RAG_MAX_VERSION_WAIT_MS): ask again until the
        # gateway's own deadline.
        while True:
            remaining = give_up_at - time.monotonic()
            try:
                await requester.request(
                    waited.topic,
                    waited.message_type,
                    r.VersionWaitRequest(version=version, timeout_ms=_wait_ms(remaining)),
                    timeout=remaining,
                    principal=principal.header(),
                )
                break
            except DeadlineExceeded:
                if give_up_at - time.monotonic() < _MIN_WAIT_SECONDS:
                    raise
        # The writer records the outcome in the transaction that applies the message,
        # before it publishes what the replica applied: it is there now.
        reply = await requester.request(
            asked.topic,
            asked.message_type,
            r.IngestOutcomeRequest(collection=message.collection, version=version),
            timeout=max(0.001, give_up_at - time.monotonic()),
            principal=principal.model_copy(
                update={"scopes": principal.scopes | {asked.scope}}
            ).header(),
        )
    except (DeadlineExceeded, NotFound, ValidationFailed, UnknownMessageType):
        # Durably accepted, outcome not known yet (or not recorded: a dead letter while
        # the database was down; or a worker from before INGEST_OUTCOME, during a
        # rolling upgrade): the caller keeps its token rather than an error.
        return pending
    try:
        return r.IngestOutcome.model_validate(reply)
    except ValidationError:
        logger.warning("an ingest outcome reply did not match its model")
        return pending


def document_ids(message: r.UpsertDocuments | r.DeleteDocuments) -> list[str]:
    """The documents a write names, in request order."""
    if isinstance(message, r.DeleteDocuments):
        return list(message.ids)
    return [document.id for document in message.documents]


async def ingest(
    requester: RequesterDep,
    settings: SettingsDep,
    operation: Operation,
    message: r.UpsertDocuments | r.DeleteDocuments,
    *,
    principal: Principal,
    wait: bool,
) -> Response:
    """Publish ``message`` on behalf of ``principal`` once its collection is known; with
    ``wait``, answer its outcome, document by document."""
    ids = document_ids(message)
    timeout = settings.request_timeout_seconds
    on_behalf = principal.header()
    # Unknown collections are a 404 here rather than a refused message later. The check
    # reads the collection, so it goes with the read scope a writer holds implicitly
    # for it (the caller's tenant and subject stay): a writer learns only whether the
    # collection it writes to exists, which its write would tell it anyway.
    get = Rag.COLLECTION_GET
    checker = principal.model_copy(update={"scopes": principal.scopes | {get.scope}})
    await requester.request(
        get.topic,
        get.message_type,
        r.CollectionNameRequest(name=message.collection),
        timeout=timeout,
        principal=checker.header(),
    )
    version = await requester.publish(
        operation.topic,
        operation.message_type,
        message,
        key=message.collection,
        principal=on_behalf,
    )
    accepted = r.IngestAccepted(version=version, documents=len(ids))
    if not wait:
        return _json(accepted, 202)
    outcome = await awaited_outcome(
        requester, message, version, timeout=timeout, principal=principal
    )
    answer = accepted.model_copy(
        update={
            "status": outcome.status,
            "results": document_outcomes(ids, outcome, collection_seen=True),
        }
    )
    if outcome.status == "refused":
        raise IngestRefused(
            "the ingest was refused: nothing was applied",
            details=answer.model_dump(mode="json"),
        )
    return _json(answer, 200 if outcome.status == "applied" else 202)


def _json(model: r.IngestAccepted, status: int) -> Response:
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")


def upsert_endpoint(operation: Operation) -> Endpoint:
    """``POST .../documents``: insert or replace documents."""
    body_model = carried_fields(operation)
    name_path = path_parameter(operation, "name")

    async def upsert_documents(
        name: name_path,  # type: ignore[valid-type]
        body: body_model,  # type: ignore[valid-type]
        requester: RequesterDep,
        settings: SettingsDep,
        *,
        principal: PrincipalDep,
        wait: WaitQuery = False,
    ) -> Response:
        """The version token orders the write: pass it as a search's ``min_version``."""
        message = request_of(operation, body, {"name": name})
        assert isinstance(message, r.UpsertDocuments)
        return await ingest(requester, settings, operation, message, principal=principal, wait=wait)

    return upsert_documents


def delete_endpoint(operation: Operation) -> Endpoint:
    """``DELETE .../documents/{document_id}``: one document; a missing one is no error."""
    name_path = path_parameter(operation, "name")

    async def delete_document(
        name: name_path,  # type: ignore[valid-type]
        document_id: DocumentPath,
        requester: RequesterDep,
        settings: SettingsDep,
        *,
        principal: PrincipalDep,
        wait: WaitQuery = False,
    ) -> Response:
        """Gone from the database and every replica's index."""
        message = r.DeleteDocuments(collection=name, ids=[document_id])
        return await ingest(requester, settings, operation, message, principal=principal, wait=wait)

    return delete_document


async def check_issued(requester: Requester, token: str) -> None:
    """:class:`InvalidInput` unless the ingest log has issued version ``token``."""
    partition, offset = (int(part) for part in token.split(":"))
    end = await requester.end_offset(r.INGEST_TOPIC, partition)
    if end is None or offset >= end:
        raise InvalidInput(
            "min_version is not a version the ingest log has issued",
            details={"min_version": token},
        )


def search_endpoint(operation: Operation) -> Endpoint:
    """``POST .../search``: forwarded, once its ``min_version`` (if any) is known."""
    forward = forwarding_endpoint(operation)

    async def search(**arguments: Any) -> Any:
        token = getattr(arguments.get("carried"), "min_version", None)
        if token is not None:
            await check_issued(arguments["requester"], token)
        return await forward(**arguments)

    search.__signature__ = forward.__signature__  # type: ignore[attr-defined]
    search.__name__ = forward.__name__
    return search


def outcome_endpoint(operation: Operation) -> Endpoint:
    """``GET .../ingests/{version}``: forwarded, once the version is known to be issued."""
    forward = forwarding_endpoint(operation)

    async def outcome(**arguments: Any) -> Any:
        await check_issued(arguments["requester"], arguments["version"])
        return await forward(**arguments)

    outcome.__signature__ = forward.__signature__  # type: ignore[attr-defined]
    outcome.__name__ = forward.__name__
    return outcome


EDGES: dict[Operation, Edge] = {
    Rag.UPSERT: upsert_endpoint,
    Rag.DELETE: delete_endpoint,
    Rag.SEARCH: search_endpoint,
    Rag.INGEST_OUTCOME: outcome_endpoint,
}
