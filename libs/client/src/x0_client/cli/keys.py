"""``x0 keys``: managed keys, held by the crypto service (secret keys never printed
unless exported)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, cast, get_args

import typer

from x0_client.cli import key_use
from x0_client.cli.key_use import In, Name, Version
from x0_client.cli.output import (
    JsonOption,
    OutOption,
    print_fields,
    print_json,
    print_line,
    print_table,
    read_bytes,
    show_bytes,
    stderr,
    write_bytes,
)
from x0_client.cli.state import state
from x0_common.events import crypto
from x0_common.events.names import KemAlgorithm, KeyType, SignatureAlgorithm

if TYPE_CHECKING:
    KeyTypeChoice = str
else:  # typer takes a flat Literal, not the contract's union of two
    KeyTypeChoice = Literal[get_args(KemAlgorithm) + get_args(SignatureAlgorithm)]

app = typer.Typer(help="Managed keys: create, rotate, use, export, back up.", no_args_is_help=True)


def _show_key(key: crypto.KeyInfo, *, as_json: bool) -> None:
    if as_json:
        print_json(key)
        return
    print_fields(key, skip=("versions",))
    print_table(
        ("version", "created", "public key"),
        ((v.version, v.created_at.isoformat(), v.public_key) for v in key.versions),
    )


@app.command()
def create(
    context: typer.Context,
    *,
    name: Name,
    key_type: Annotated[KeyTypeChoice, typer.Option("--type", "-t", help="The key's algorithm.")],
    exportable: Annotated[
        bool, typer.Option("--exportable", help="Allow export of the secret keys.")
    ] = False,
    deletion_allowed: Annotated[
        bool, typer.Option("--deletion-allowed", help="Allow deleting the key.")
    ] = False,
    auto_rotate: Annotated[
        int | None, typer.Option(help="Rotate when the latest version is this many seconds old.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a managed key.

    Examples:

        x0 keys create node-a --type X-Wing

        x0 keys create signer --type ML-DSA-65 --exportable --auto-rotate 86400
    """
    with state(context).client() as x0:
        key = x0.create_key(
            name=name,
            type=cast(KeyType, key_type),
            exportable=exportable,
            deletion_allowed=deletion_allowed,
            auto_rotate_period_seconds=auto_rotate,
        )
    _show_key(key, as_json=as_json)


@app.command("list")
def list_keys(context: typer.Context, as_json: JsonOption = False) -> None:
    """List the names of every managed key.

    Example:

        x0 keys list --json
    """
    with state(context).client() as x0:
        listed = x0.list_keys()
    if as_json:
        print_json(listed)
    else:
        for key_name in listed.names:
            print_line(key_name)


@app.command()
def show(context: typer.Context, name: Name, as_json: JsonOption = False) -> None:
    """A key's settings and the public key of every version.

    Example:

        x0 keys show node-a
    """
    with state(context).client() as x0:
        _show_key(x0.read_key(name=name), as_json=as_json)


@app.command()
def rotate(context: typer.Context, name: Name, as_json: JsonOption = False) -> None:
    """Add a version; new operations use it.

    Example:

        x0 keys rotate node-a
    """
    with state(context).client() as x0:
        _show_key(x0.rotate_key(name=name), as_json=as_json)


@app.command()
def delete(context: typer.Context, name: Name, as_json: JsonOption = False) -> None:
    """Delete a key, every version of it (only if created with --deletion-allowed).

    Example:

        x0 keys delete old-key
    """
    with state(context).client() as x0:
        deleted = x0.delete_key(name=name)
    print_json(deleted) if as_json else print_line(f"deleted {deleted.name}")


@app.command()
def export(
    context: typer.Context,
    *,
    name: Name,
    version: Version = None,
    out: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export the secret keys of an exportable key (409 if it is not exportable).

    Examples:

        x0 keys export signer --json

        x0 keys export signer --version 2 --out signer-v2.key
    """
    with state(context).client() as x0:
        exported = x0.export_key(name=name, version=version)
    if out is not None:
        chosen = version if version is not None else max(exported.secret_keys)
        write_bytes(out, exported.secret_keys[chosen])
    elif as_json:
        print_json(exported)
    else:
        print_table(("version", "secret key"), sorted(exported.secret_keys.items()))


@app.command()
def backup(
    context: typer.Context, *, name: Name, out: OutOption = None, as_json: JsonOption = False
) -> None:
    """The key as an encrypted blob, for `x0 keys restore`.

    Example:

        x0 keys backup node-a --out node-a.backup
    """
    with state(context).client() as x0:
        saved = x0.backup_key(name=name)
    show_bytes("backup", saved.backup, out, as_json=as_json)


@app.command()
def restore(
    context: typer.Context,
    *,
    source: In = "-",
    name: Annotated[str | None, typer.Option(help="Restore under this name.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Restore a key from its backup.

    Example:

        x0 keys restore --in node-a.backup --name node-a-copy
    """
    with state(context).client() as x0:
        key = x0.restore_key(backup=read_bytes(source), name=name, force=force)
    stderr().print(f"restored {key.name}")
    _show_key(key, as_json=as_json)


for _use in (key_use.encrypt, key_use.decrypt, key_use.sign, key_use.verify):
    app.command()(_use)
