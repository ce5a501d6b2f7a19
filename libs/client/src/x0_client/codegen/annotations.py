"""Python source for a pydantic field's annotation, as the generated methods write it.

Constraints (``Annotated`` metadata: patterns, lengths, base64url) are dropped: the
request model checks them when the call validates it. Models and the contract's named
``Literal`` types are written through their public modules (``crypto.EncryptRequest``,
``names.KemAlgorithm``) so the generated file reads like the contract.
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterable
from datetime import datetime
from types import ModuleType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel, NaiveDatetime

from x0_common.events import crypto, names, rag, telemetry

# Where a model or a named type is written from, in the order they are looked up.
PUBLIC_MODULES: tuple[tuple[str, ModuleType], ...] = (
    ("names", names),
    ("crypto", crypto),
    ("rag", rag),
    ("telemetry", telemetry),
)
_BUILTINS = {str: "str", int: "int", float: "float", bool: "bool", bytes: "bytes"}


def _is_named_type(value: Any) -> bool:
    return get_origin(value) in {Literal, Union, types.UnionType}


class Renderer:
    """Renders annotations and remembers which imports they need."""

    def __init__(self, modules: Iterable[tuple[str, ModuleType]] = PUBLIC_MODULES) -> None:
        self.modules = tuple(modules)
        self.typing: set[str] = set()
        self.used_modules: set[str] = set()
        self.uses_datetime = False
        self._named = [
            (f"{alias}.{name}", value)
            for alias, module in self.modules
            for name, value in vars(module).items()
            if not name.startswith("_") and _is_named_type(value)
        ]

    def render(self, annotation: Any) -> str:  # noqa: PLR0911 - one return per kind of type
        """The source text of ``annotation``."""
        if get_origin(annotation) is Annotated:
            return self.render(get_args(annotation)[0])
        if annotation is None or annotation is type(None):
            return "None"
        if annotation is Any:
            self.typing.add("Any")
            return "Any"
        named = self._name_of_type(annotation)
        if named is not None:
            return named
        origin = get_origin(annotation)
        if origin is Literal:
            self.typing.add("Literal")
            values = ", ".join(
                json.dumps(v) if isinstance(v, str) else repr(v) for v in get_args(annotation)
            )
            return f"Literal[{values}]"
        if origin in {Union, types.UnionType}:
            return " | ".join(self.render(arg) for arg in get_args(annotation))
        if origin in {list, dict, tuple, set, frozenset}:
            arguments = ", ".join(self.render(arg) for arg in get_args(annotation))
            return f"{origin.__name__}[{arguments}]"
        if annotation in _BUILTINS:
            return _BUILTINS[annotation]
        if annotation in {datetime, AwareDatetime, NaiveDatetime}:
            self.uses_datetime = True
            return "datetime"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return self.model(annotation)
        msg = f"no source form for the annotation {annotation!r}: teach codegen.annotations"
        raise TypeError(msg)

    def model(self, model: type[BaseModel]) -> str:
        """``module.Name`` of a model of the contract's public modules."""
        for alias, module in self.modules:
            if getattr(module, model.__name__, None) is model:
                self.used_modules.add(alias)
                return f"{alias}.{model.__name__}"
        msg = f"{model.__module__}.{model.__name__} is not exported by a public events module"
        raise TypeError(msg)

    def _name_of_type(self, annotation: Any) -> str | None:
        if not _is_named_type(annotation):
            return None
        for name, value in self._named:
            if value == annotation:
                self.used_modules.add(name.split(".", 1)[0])
                return name
        return None
