"""The ``x0`` command: the root options, the command groups, errors to exit codes."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import httpx
import pydantic
import typer

from x0_client.cli import keys, rag, stateless, telemetry
from x0_client.cli.output import stderr
from x0_client.cli.state import EXIT_USAGE, State, describe, exit_code, state
from x0_client.errors import X0ClientError

app = typer.Typer(
    name="x0",
    help="""Command line of the x0tta6bl4 gateway: post-quantum crypto, RAG, mesh telemetry.

    Every command prints a table (or a plain value) by default and JSON with --json.
    Binary values are raw bytes in files ('-' for stdin/stdout), base64url when printed.

    Exit codes: 0 ok, 1 other failure, 2 usage, 3 not found, 4 conflict,
    5 invalid input or validation, 6 unauthorized or forbidden,
    7 unavailable, timed out, rate limited or no connection.

    Examples:

        export X0_URL=http://127.0.0.1:8000 X0_API_KEY=...

        x0 kem keypair --algorithm X-Wing --public-out pk.bin --secret-out sk.bin

        x0 keys create node-a --type X-Wing

        echo hello | x0 keys encrypt node-a > sealed.txt

        x0 rag search docs "partition order" -k 5 --json
    """,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(keys.app, name="keys")
app.add_typer(stateless.kem, name="kem")
app.add_typer(stateless.sig, name="sig")
app.add_typer(rag.app, name="rag")
app.add_typer(telemetry.app, name="telemetry")


@app.callback()
def root(
    context: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(envvar="X0_URL", help="Gateway base URL (default http://127.0.0.1:8000)."),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="X0_API_KEY", help="Sent as 'Authorization: Bearer <key>'.", show_default=False
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            envvar="X0_TIMEOUT_SECONDS", help="Seconds to wait for an answer (default 30)"
        ),
    ] = None,
) -> None:
    """Connection options, shared by every command."""
    chosen = state(context)
    chosen.url, chosen.api_key, chosen.timeout = url, api_key, timeout


def run(
    args: Sequence[str] | None = None,
    *,
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
) -> int:
    """Run ``x0`` with ``args`` (default: the process's) and return its exit code.

    ``transport`` replaces the network, e.g. :class:`x0_client.testing.MockGateway`.
    """
    initial = State(
        transport=transport if isinstance(transport, httpx.BaseTransport) else None,
        async_transport=transport if isinstance(transport, httpx.AsyncBaseTransport) else None,
    )
    try:
        app(args=list(args) if args is not None else None, obj=initial, prog_name="x0")
    except SystemExit as finished:
        code = finished.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
    except (X0ClientError, pydantic.ValidationError) as error:
        stderr().print(describe(error), markup=False, highlight=False)
        return exit_code(error)
    return 0


def main() -> None:
    """Entry point of ``x0``."""
    sys.exit(run())
