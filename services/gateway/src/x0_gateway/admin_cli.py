"""``x0-gateway-admin``: tenants and API keys, straight to PostgreSQL.

For the first key, when no caller can use ``/v1/admin`` yet, and for operators with
database access. It reads the gateway's settings (``X0_POSTGRES__DSN``,
``X0_GATEWAY_API_KEY_PEPPER(_FILE)``, ``X0_ENVIRONMENT``) and applies the gateway's
migrations first, so it works before any gateway has started. Output is JSON.

    x0-gateway-admin create-tenant ID --name NAME
    x0-gateway-admin create-key --tenant default --scopes crypto,keys:read --name ci \
        [--expires-in 90d]
    x0-gateway-admin list-keys [--tenant ID]
    x0-gateway-admin revoke-key KEY_ID
    x0-gateway-admin dev-key --file .stack/dev-admin-key   (development only; make up)
"""

# A command-line tool: its output is for the person (or script) that ran it.
# ruff: noqa: T201

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from x0_common.errors import X0Error
from x0_common.postgres import create_pool, migrate
from x0_common.principal import DEFAULT_TENANT, GRANTABLE_SCOPES
from x0_gateway.auth import apikeys
from x0_gateway.auth.setup import MIGRATIONS
from x0_gateway.auth.store import SCHEMA, ApiKeyStore
from x0_gateway.settings import GatewaySettings

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
DEV_KEY_NAME = "development admin key (make up)"


def duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``3600s`` or plain seconds."""
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if match is None:
        msg = f"not a duration: {text!r} (e.g. 90d, 12h, 30m, 3600s)"
        raise argparse.ArgumentTypeError(msg)
    return timedelta(seconds=int(match[1]) * _UNITS[match[2] or "s"])


def scope_list(text: str) -> list[str]:
    """Comma-separated scopes, or ``all`` for every grantable one."""
    if text.strip() == "all":
        return sorted(GRANTABLE_SCOPES)
    return [scope.strip() for scope in text.split(",") if scope.strip()]


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(prog="x0-gateway-admin", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    tenant = commands.add_parser("create-tenant", help="create a tenant")
    tenant.add_argument("id", help="lower-case letters, digits and dashes")
    tenant.add_argument("--name", required=True)
    key = commands.add_parser("create-key", help="create an API key; prints its secret once")
    key.add_argument("--tenant", default=DEFAULT_TENANT)
    key.add_argument("--scopes", type=scope_list, required=True, help="a,b,c or all")
    key.add_argument("--name", required=True)
    key.add_argument("--expires-in", type=duration, default=None)
    listing = commands.add_parser("list-keys", help="list API keys (never their secrets)")
    listing.add_argument("--tenant", default=None)
    commands.add_parser("list-tenants", help="list tenants")
    for command, verb in (("disable-tenant", "refuse"), ("enable-tenant", "accept again")):
        switch = commands.add_parser(command, help=f"{verb} every credential of a tenant")
        switch.add_argument("id")
    revoke = commands.add_parser("revoke-key", help="revoke an API key by id")
    revoke.add_argument("id", type=uuid.UUID)
    dev = commands.add_parser(
        "dev-key", help="development only: make sure FILE holds a usable admin key"
    )
    dev.add_argument("--file", type=Path, required=True)
    return top


def _json(value: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json(indent=2)
    if isinstance(value, dict):
        return json.dumps(value, indent=2)
    return json.dumps([item.model_dump(mode="json") for item in value], indent=2)


async def dev_key(store: ApiKeyStore, settings: GatewaySettings, file: Path) -> dict[str, Any]:
    """Keep ``file`` holding a usable development admin key: the one there, or a new one
    (earlier development keys, whose secrets are lost, are revoked)."""
    if settings.common.environment != "development":
        msg = "dev-key is for X0_ENVIRONMENT=development only"
        raise SystemExit(msg)
    held = _read_secret(file)
    if held is not None:
        found = await store.find(apikeys.digest(settings.pepper(), held))
        if found is not None and found[0].development and found[0].usable_at(datetime.now(UTC)):
            return {"file": str(file), "id": str(found[0].id), "created": False}
    for stale in await store.active_development_keys():
        await store.revoke_key(stale.id)
    created = await store.create_key(
        name=DEV_KEY_NAME, tenant=DEFAULT_TENANT, scopes=GRANTABLE_SCOPES, development=True
    )
    _write_secret(file, created.key)
    return {"file": str(file), "id": str(created.id), "created": True}


def _read_secret(file: Path) -> str | None:
    return file.read_text().strip() if file.exists() else None


def _write_secret(file: Path, secret: str) -> None:
    """Readable by its owner only (0600), whatever the umask or an earlier file's mode."""
    file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(secret + "\n")
    file.chmod(0o600)


async def run(arguments: argparse.Namespace, settings: GatewaySettings) -> str:  # noqa: PLR0911 - one per command
    """Carry out one command; returns what to print."""
    pool = await create_pool(settings.common.postgres)
    try:
        await migrate(pool, SCHEMA, MIGRATIONS)
        store = ApiKeyStore(pool, settings.pepper())
        match arguments.command:
            case "create-tenant":
                return _json(await store.create_tenant(arguments.id, arguments.name))
            case "list-tenants":
                return _json(await store.list_tenants())
            case "create-key":
                expires = arguments.expires_in
                created = await store.create_key(
                    name=arguments.name,
                    tenant=arguments.tenant,
                    scopes=arguments.scopes,
                    expires_at=None if expires is None else datetime.now(UTC) + expires,
                )
                return _json(created)
            case "list-keys":
                return _json(await store.list_keys(arguments.tenant))
            case "disable-tenant" | "enable-tenant":
                disabled = arguments.command == "disable-tenant"
                return _json(await store.set_tenant_disabled(arguments.id, disabled=disabled))
            case "revoke-key":
                return _json(await store.revoke_key(arguments.id))
            case "dev-key":
                return _json(await dev_key(store, settings, arguments.file))
        msg = f"unknown command {arguments.command}"
        raise AssertionError(msg)
    finally:
        await pool.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``x0-gateway-admin``."""
    arguments = parser().parse_args(argv)
    try:
        print(asyncio.run(run(arguments, GatewaySettings())))
    except X0Error as error:
        print(f"x0-gateway-admin: {error.message} {json.dumps(error.details)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
