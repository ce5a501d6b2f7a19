"""What the commands print and read: tables or JSON out, bytes in and out.

Binary values are raw bytes in files (``-`` is stdin or stdout) and base64url text
when printed, in tables and JSON alike.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from x0_common.events.binary import encode
from x0_common.events.crypto import VerifyResult

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON (binary values base64url).")
]
STDIO = "-"
M = TypeVar("M", bound=BaseModel)
# Options that the stateless (``x0 kem``/``x0 sig``) and managed-key commands share.
OutOption = Annotated[
    str | None, typer.Option("--out", "-o", help="Write raw bytes here ('-': stdout).")
]
ContextOption = Annotated[str, typer.Option("--context", help="FIPS 204 context string (UTF-8).")]
SignatureFileOption = Annotated[
    str, typer.Option("--signature", "-s", help="Signature file (raw).")
]


# Tables piped to a file or another program are not cut to 80 columns.
PIPED_WIDTH = 200


def stdout() -> Console:
    """A console on this moment's stdout (so that redirections and tests see it)."""
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(file=sys.stdout, soft_wrap=True, width=PIPED_WIDTH if piped else None)


def stderr() -> Console:
    """A console on stderr: progress, notes and errors."""
    return Console(file=sys.stderr, soft_wrap=True)


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout; models are dumped as on the wire."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def show(result: M, *, as_json: bool, human: Callable[[M], None]) -> None:
    """``result`` as JSON with ``--json``, else as ``human`` prints it for people."""
    if as_json:
        print_json(result)
    else:
        human(result)


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
) -> None:
    """A table on stdout; ``bytes`` cells as base64url, ``None`` as blank."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")  # wrapped, never cut with an ellipsis
    for row in rows:
        table.add_row(*(cell_text(cell) for cell in row))
    stdout().print(table)


def print_fields(model: BaseModel, *, skip: Iterable[str] = ()) -> None:
    """One ``field  value`` row per top-level field of ``model``."""
    dumped = model.model_dump(mode="json")
    rows = [(name, value) for name, value in dumped.items() if name not in set(skip)]
    table = Table(show_header=False, box=None)
    table.add_column("field", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(name, cell_text(value))
    stdout().print(table)


def cell_text(value: Any) -> str:
    """How a value reads in a table cell."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return encode(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def print_line(text: str) -> None:
    """A plain line on stdout."""
    sys.stdout.write(text + "\n")


def read_bytes(path: str) -> bytes:
    """A file's bytes, or stdin's for ``-``."""
    return sys.stdin.buffer.read() if path == STDIO else Path(path).read_bytes()


def read_text(path: str) -> str:
    """A file's text, or stdin's for ``-``, without surrounding whitespace."""
    return read_bytes(path).decode("utf-8").strip()


def write_bytes(path: str, data: bytes) -> None:
    """Raw bytes to a file, or to stdout for ``-``."""
    if path == STDIO:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        Path(path).write_bytes(data)


def show_bytes(name: str, data: bytes, out: str | None, *, as_json: bool) -> None:
    """One binary result: raw to ``out`` when given, else printed as base64url."""
    if out is not None:
        write_bytes(out, data)
        if out != STDIO:
            stderr().print(f"{name}: {len(data)} bytes written to {out}")
        return
    if as_json:
        print_json({name: encode(data)})
    else:
        print_line(encode(data))


def show_verdict(checked: VerifyResult, *, as_json: bool) -> None:
    """A verification's result; exit code 1 when it does not verify, so scripts can test it."""
    if as_json:
        print_json(checked)
    else:
        print_line("valid" if checked.valid else "invalid")
    if not checked.valid:
        raise typer.Exit(1)
