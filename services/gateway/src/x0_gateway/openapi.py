"""The OpenAPI document as the gateway answers: every error is a problem document.

FastAPI documents an error response by its description only, and adds its own 422
(``application/json``, ``HTTPValidationError``) to routes with parameters. The gateway
answers every error as ``application/problem+json`` (:mod:`x0_gateway.problems`), so
each documented 4xx and 5xx gets that content type and the :class:`Problem` schema, and
FastAPI's unused validation schemas are dropped. schemathesis
(``tests/e2e/test_schemathesis.py``) holds every answer to this document.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from x0_gateway.problems import PROBLEM_JSON

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_SCHEMAS = ("HTTPValidationError", "ValidationError")


class Problem(BaseModel):
    """An error (RFC 9457): ``code`` is the stable name to match on."""

    type: str = Field(examples=["urn:x0:problem:not_found"])
    title: str
    status: int = Field(ge=400, le=599)
    code: str = Field(examples=["not_found"])
    instance: str = Field(description="the request's path")
    details: dict[str, Any] | None = None
    trace_id: str | None = Field(default=None, description="the request's trace")


def problem_responses(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with every error response documented as a problem."""
    for methods in document.get("paths", {}).values():
        for entry in methods.values():
            for status, response in entry.get("responses", {}).items():
                if status[0] in "45":
                    response["content"] = {PROBLEM_JSON: {"schema": _PROBLEM_REF}}
                    if status == "422" and response.get("description") == "Validation Error":
                        response["description"] = "The request does not match its schema."
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_SCHEMAS:
        schemas.pop(name, None)
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve FastAPI's document (built and cached once) with problem responses."""
    built = app.openapi
    done: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not done:
            done.append(problem_responses(built()))
        return done[0]

    app.openapi = openapi  # type: ignore[method-assign]
