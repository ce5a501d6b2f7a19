"""``x0 kem`` and ``x0 sig``: the stateless operations, where the caller holds the keys.

Keys, ciphertexts and signatures are raw bytes in files; without an output file they
are printed as base64url.
"""

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
    show_bytes,
    show_verdict,
    write_bytes,
)
from x0_client.cli.state import state
from x0_common.events.binary import encode
from x0_common.events.crypto import KeypairResult
from x0_common.events.names import KemAlgorithm, SignatureAlgorithm

kem = typer.Typer(
    help="Key encapsulation (ML-KEM, X-Wing) with keys you hold.", no_args_is_help=True
)
sig = typer.Typer(
    help="Signatures (ML-DSA, Ed25519+ML-DSA-65) with keys you hold.", no_args_is_help=True
)

Kem = Annotated[KemAlgorithm, typer.Option("--algorithm", "-a")]
Sig = Annotated[SignatureAlgorithm, typer.Option("--algorithm", "-a")]
PublicOut = Annotated[str | None, typer.Option(help="Write the public key here (raw).")]
SecretOut = Annotated[str | None, typer.Option(help="Write the secret key here (raw).")]
In = Annotated[str, typer.Option("--in", "-i", help="Message file ('-': stdin).")]
KeyFile = Annotated[str, typer.Option(help="Key file (raw bytes).", show_default=False)]


def _show_pair(
    pair: KeypairResult, public_out: str | None, secret_out: str | None, *, as_json: bool
) -> None:
    if public_out:
        write_bytes(public_out, pair.public_key)
    if secret_out:
        write_bytes(secret_out, pair.secret_key)
    if as_json:
        print_json(pair)
    elif not (public_out or secret_out):
        print_line(f"public_key {encode(pair.public_key)}")
        print_line(f"secret_key {encode(pair.secret_key)}")


@kem.command("keypair")
def kem_keypair(
    context: typer.Context,
    *,
    algorithm: Kem = "ML-KEM-768",
    public_out: PublicOut = None,
    secret_out: SecretOut = None,
    as_json: JsonOption = False,
) -> None:
    """A new KEM key pair.

    Example:

        x0 kem keypair -a X-Wing --public-out pk.bin --secret-out sk.bin
    """
    with state(context).client() as x0:
        pair = x0.kem_keypair(algorithm=algorithm)
    _show_pair(pair, public_out, secret_out, as_json=as_json)


@kem.command()
def encapsulate(
    context: typer.Context,
    *,
    public_key: KeyFile,
    algorithm: Kem = "ML-KEM-768",
    ciphertext_out: Annotated[str | None, typer.Option(help="Write the ciphertext here.")] = None,
    secret_out: Annotated[str | None, typer.Option(help="Write the shared secret here.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Encapsulate a fresh shared secret to a public key.

    Example:

        x0 kem encapsulate -a X-Wing --public-key pk.bin --ciphertext-out ct.bin --secret-out ss.bin
    """
    with state(context).client() as x0:
        sent = x0.kem_encapsulate(algorithm=algorithm, public_key=read_bytes(public_key))
    if ciphertext_out:
        write_bytes(ciphertext_out, sent.ciphertext)
    if secret_out:
        write_bytes(secret_out, sent.shared_secret)
    if as_json:
        print_json(sent)
    elif not (ciphertext_out or secret_out):
        print_line(f"ciphertext {encode(sent.ciphertext)}")
        print_line(f"shared_secret {encode(sent.shared_secret)}")


@kem.command()
def decapsulate(
    context: typer.Context,
    *,
    secret_key: KeyFile,
    ciphertext: Annotated[str, typer.Option(help="Ciphertext file ('-': stdin).")] = "-",
    algorithm: Kem = "ML-KEM-768",
    out: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recover the shared secret from a ciphertext.

    Example:

        x0 kem decapsulate -a X-Wing --secret-key sk.bin --ciphertext ct.bin --out ss.bin
    """
    with state(context).client() as x0:
        opened = x0.kem_decapsulate(
            algorithm=algorithm,
            secret_key=read_bytes(secret_key),
            ciphertext=read_bytes(ciphertext),
        )
    show_bytes("shared_secret", opened.shared_secret, out, as_json=as_json)


@sig.command("keypair")
def sig_keypair(
    context: typer.Context,
    *,
    algorithm: Sig = "ML-DSA-65",
    public_out: PublicOut = None,
    secret_out: SecretOut = None,
    as_json: JsonOption = False,
) -> None:
    """A new signature key pair.

    Example:

        x0 sig keypair -a ML-DSA-65 --public-out pk.bin --secret-out sk.bin
    """
    with state(context).client() as x0:
        pair = x0.signature_keypair(algorithm=algorithm)
    _show_pair(pair, public_out, secret_out, as_json=as_json)


@sig.command()
def sign(
    context: typer.Context,
    *,
    secret_key: KeyFile,
    source: In = "-",
    algorithm: Sig = "ML-DSA-65",
    signing_context: ContextOption = "",
    out: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sign a message with a secret key you hold.

    Example:

        x0 sig sign --secret-key sk.bin --in firmware.bin --out firmware.sig
    """
    with state(context).client() as x0:
        signed = x0.sign(
            algorithm=algorithm,
            secret_key=read_bytes(secret_key),
            message=read_bytes(source),
            context=signing_context.encode(),
        )
    show_bytes("signature", signed.signature, out, as_json=as_json)


@sig.command()
def verify(
    context: typer.Context,
    *,
    public_key: KeyFile,
    signature: SignatureFileOption,
    source: In = "-",
    algorithm: Sig = "ML-DSA-65",
    signing_context: ContextOption = "",
    as_json: JsonOption = False,
) -> None:
    """Verify a signature; exit code 1 when it does not verify.

    Example:

        x0 sig verify --public-key pk.bin --signature firmware.sig --in firmware.bin
    """
    with state(context).client() as x0:
        checked = x0.verify(
            algorithm=algorithm,
            public_key=read_bytes(public_key),
            message=read_bytes(source),
            signature=read_bytes(signature),
            context=signing_context.encode(),
        )
    show_verdict(checked, as_json=as_json)
