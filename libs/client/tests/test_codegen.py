"""The generated methods are what the contract says, and the committed file is current."""

from __future__ import annotations

import inspect
import subprocess
import sys
import typing

import pytest

from x0_client import AsyncClient, Client
from x0_client.codegen import TARGET, render
from x0_client.routes import ROUTED, extras_of

pytestmark = pytest.mark.unit


def test_the_committed_operations_file_is_up_to_date() -> None:
    assert TARGET.read_text(encoding="utf-8") == render(), (
        "regenerate with: python -m x0_client.codegen"
    )


def test_check_mode_says_whether_the_file_is_stale() -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "x0_client.codegen", "--check"], capture_output=True, check=False
    )
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("client", [Client, AsyncClient])
def test_every_routed_operation_is_a_method_with_its_fields_as_keywords(client: type) -> None:
    for operation in ROUTED:
        method = getattr(client, operation.name)
        assert inspect.iscoroutinefunction(method) == (client is AsyncClient), operation.name
        assert operation.summary.split(".")[0][:40] in (method.__doc__ or ""), operation.name
        by_request, by_keywords = typing.get_overloads(method)
        keywords = inspect.signature(by_keywords).parameters
        options = {o.name for o in extras_of(operation).options}
        assert set(keywords) - {"self"} == set(operation.request.model_fields) | options
        for name, info in operation.request.model_fields.items():
            assert keywords[name].kind is inspect.Parameter.KEYWORD_ONLY
            required = keywords[name].default is inspect.Parameter.empty
            assert required == info.is_required(), (operation.name, name)
        assert "request" in inspect.signature(by_request).parameters


def test_edge_options_are_keywords_of_the_rag_writes() -> None:
    signature = inspect.signature(Client.upsert_documents)
    assert signature.parameters["wait"].default is False
    assert "wait" not in inspect.signature(Client.search).parameters
