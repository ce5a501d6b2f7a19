"""``x0 keys`` commands that use a key: encrypt, decrypt, sign, verify (registered on
:data:`x0_client.cli.keys.app`)."""

from __future__ import annotations

from typing import Annotated

import typer

from x0_client.cli.output import (
    ContextOption,
    JsonOption,
    OutOption,
    SignatureFileOption,
    print_json,
    print_line,
    read_bytes,
    read_text,
    show_bytes,
    show_verdict,
    write_bytes,
)
from x0_client.cli.state import state

Name = Annotated[str, typer.Argument(help="The key's name.", show_default=False)]
In = Annotated[str, typer.Option("--in", "-i", help="Input file ('-': stdin).")]
Aad = Annotated[str | None, typer.Option("--aad", help="File of associated data.")]
Version = Annotated[int | None, typer.Option("--version", help="Key version (default latest).")]


def encrypt(
    context: typer.Context,
    *,
    name: Name,
    source: In = "-",
    aad: Aad = None,
    out: Annotated[str | None, typer.Option("--out", "-o", help="Ciphertext file.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Encrypt bytes under a managed KEM key; prints the x0:v<version>: ciphertext.

    Examples:

        echo -n hello | x0 keys encrypt node-a > sealed.txt

        x0 keys encrypt node-a --in report.pdf --aad header.bin --out report.x0
    """
    with state(context).client() as x0:
        sealed = x0.key_encrypt(
            name=name,
            plaintext=read_bytes(source),
            associated_data=read_bytes(aad) if aad else None,
        )
    if as_json:
        print_json(sealed)
    elif out is not None:
        write_bytes(out, sealed.ciphertext.encode())
    else:
        print_line(sealed.ciphertext)


def decrypt(
    context: typer.Context,
    *,
    name: Name,
    source: In = "-",
    aad: Aad = None,
    out: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Decrypt an x0:v<version>: ciphertext; prints the plaintext as base64url unless --out.

    Examples:

        x0 keys decrypt node-a --in sealed.txt --out -

        x0 keys decrypt node-a --in report.x0 --aad header.bin --out report.pdf
    """
    with state(context).client() as x0:
        opened = x0.key_decrypt(
            name=name,
            ciphertext=read_text(source),
            associated_data=read_bytes(aad) if aad else None,
        )
    show_bytes("plaintext", opened.plaintext, out, as_json=as_json)


def sign(
    context: typer.Context,
    *,
    name: Name,
    source: In = "-",
    signing_context: ContextOption = "",
    version: Version = None,
    out: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sign a message with a managed signature key.

    Example:

        x0 keys sign signer --in firmware.bin --out firmware.sig
    """
    with state(context).client() as x0:
        signed = x0.key_sign(
            name=name,
            message=read_bytes(source),
            version=version,
            context=signing_context.encode(),
        )
    if as_json:
        print_json(signed)
    else:
        show_bytes("signature", signed.signature, out, as_json=False)


def verify(
    context: typer.Context,
    *,
    name: Name,
    signature: SignatureFileOption,
    source: In = "-",
    signing_context: ContextOption = "",
    version: Version = None,
    as_json: JsonOption = False,
) -> None:
    """Verify a signature with a managed key; exit code 1 when it does not verify.

    Example:

        x0 keys verify signer --in firmware.bin --signature firmware.sig
    """
    with state(context).client() as x0:
        checked = x0.key_verify(
            name=name,
            message=read_bytes(source),
            signature=read_bytes(signature),
            version=version,
            context=signing_context.encode(),
        )
    show_verdict(checked, as_json=as_json)
