"""Who sent a message, as every worker consumer reads it: the rules of ``principal_of``."""

from __future__ import annotations

import pytest

from x0_common.contract import Crypto, Rag
from x0_common.errors import Forbidden, Unauthenticated
from x0_common.events.envelope import Headers
from x0_common.kafka.consumer import UPSTREAM_SUBJECT, principal_of
from x0_common.principal import DEFAULT_TENANT, qualified, unqualified
from x0_common.testing.principals import principal, principal_header

pytestmark = pytest.mark.unit


def test_a_principal_with_the_rows_scope_is_the_sender() -> None:
    header = principal_header("acme", scopes=["keys:read"])
    sender = principal_of({Headers.PRINCIPAL: header}, Crypto.KEY_READ)
    assert sender == principal("acme", scopes=["keys:read"])


@pytest.mark.parametrize("header", [None, "", "{}", "not json", '{"tenant": "UPPER"}'])
def test_no_or_a_malformed_principal_is_unauthenticated(header: str | None) -> None:
    headers = {} if header is None else {Headers.PRINCIPAL: header}
    with pytest.raises(Unauthenticated) as caught:
        principal_of(headers, Crypto.KEY_READ)
    # The header's content is never echoed back.
    assert "UPPER" not in caught.value.message


def test_a_principal_without_the_scope_is_forbidden() -> None:
    header = principal_header("acme", scopes=["keys:use"])
    with pytest.raises(Forbidden) as caught:
        principal_of({Headers.PRINCIPAL: header}, Crypto.KEY_EXPORT)
    assert caught.value.details == {"required_scope": "keys:export"}


def test_internal_rows_need_a_principal_but_no_scope() -> None:
    header = principal_header("acme", scopes=["rag:read"])
    assert principal_of({Headers.PRINCIPAL: header}, Rag.VERSION_WAIT).tenant == "acme"
    with pytest.raises(Unauthenticated):
        principal_of({}, Rag.VERSION_WAIT, anonymous_tenant=DEFAULT_TENANT)


def test_producers_rows_without_a_principal_belong_to_the_anonymous_tenant() -> None:
    sender = principal_of({}, Rag.UPSERT, anonymous_tenant="upstream")
    assert (sender.tenant, sender.subject, sender.scopes) == (
        "upstream",
        UPSTREAM_SUBJECT,
        frozenset({"rag:write"}),
    )
    # Without an anonymous tenant, or with a malformed principal, they are refused.
    with pytest.raises(Unauthenticated):
        principal_of({}, Rag.UPSERT)
    with pytest.raises(Unauthenticated):
        principal_of({Headers.PRINCIPAL: "x"}, Rag.UPSERT, anonymous_tenant="upstream")


@pytest.mark.parametrize(("tenant", "label"), [(DEFAULT_TENANT, "docs"), ("acme", "acme/docs")])
def test_a_qualified_label_names_its_tenant_unless_default(tenant: str, label: str) -> None:
    assert qualified(tenant, "docs") == label
    assert unqualified(label) == (tenant, "docs")
