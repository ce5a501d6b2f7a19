"""The RAG routes that do more than forward: ingest through Kafka, optionally waiting,
and a search's ``min_version`` checked first.

A write is published to ``x0.rag.ingest`` (202 with its version token once Kafka
holds it); with ``wait=true`` the answer is 200 once a replica has applied it. A
search whose ``min_version`` the ingest log never issued is a 400 at once (a worker
would wait for it in vain and answer 504).
"""

from typing import Annotated, Any

from fastapi import Path, Query, Response

from x0_common.contract import Operation, Rag
from x0_common.errors import DeadlineExceeded, InvalidInput
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

WaitQuery = Annotated[bool, Query(description="answer 200 once searchable")]
# The path names one document; the message carries a list of ids.
DocumentPath = Annotated[DocumentId, Path()]


async def ingest(
    requester: RequesterDep,
    settings: SettingsDep,
    operation: Operation,
    message: r.UpsertDocuments | r.DeleteDocuments,
    *,
    principal: Principal,
    documents: int,
    wait: bool,
) -> Response:
    """Publish ``message`` on behalf of ``principal`` once its collection is known; wait
    if asked."""
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
    accepted = r.IngestAccepted(version=version, documents=documents)
    status = 202
    if wait:
        waited = Rag.VERSION_WAIT
        try:
            await requester.request(
                waited.topic,
                waited.message_type,
                r.VersionWaitRequest(version=version),
                timeout=timeout,
                principal=on_behalf,
            )
            status = 200
        except DeadlineExceeded:
            # Durably accepted, just not searchable yet: the caller keeps its token
            # (202, as without wait) rather than losing it to a 504.
            pass
    return Response(accepted.model_dump_json(), status_code=status, media_type="application/json")


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
        return await ingest(
            requester,
            settings,
            operation,
            message,
            principal=principal,
            documents=len(message.documents),
            wait=wait,
        )

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
        return await ingest(
            requester, settings, operation, message, principal=principal, documents=1, wait=wait
        )

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


EDGES: dict[Operation, Edge] = {
    Rag.UPSERT: upsert_endpoint,
    Rag.DELETE: delete_endpoint,
    Rag.SEARCH: search_endpoint,
}
