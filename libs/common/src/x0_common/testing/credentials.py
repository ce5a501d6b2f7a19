"""Each x0 service's own PostgreSQL role and Redis ACL user on the local stack.

``deploy/local-stack/stack.sh`` makes one PostgreSQL role and one Redis user per service
(``gateway``, ``crypto``, ``rag``, ``telemetry``), each with a random password in a file
of mode 0600 under ``<state folder>/credentials/``, and says where that folder is in
``X0_STACK_CREDENTIALS`` (``stack.sh env``). Tools and tests keep the stack's admin
(``X0_POSTGRES__DSN``/``X0_REDIS__URL``); a service process gets its own identity from
:func:`service_environment`: the same server and database, its role or user, and
its password file (``X0_POSTGRES__PASSWORD_FILE``, ``X0_REDIS__PASSWORD_FILE``).

The executors of :mod:`x0_common.testing.processes` apply it to every ``python -m
x0_<service>`` they start, so ``make up``, the tests, the benchmarks and the load runs
all start services as themselves. Without a credentials folder (testcontainers, a
stack made before the roles existed) nothing changes.

Kafka the same way: the stack's development PKI (``X0_STACK_IDENTITY``, the folder of
``<name>/{cert,key,bundle}.pem``) holds one certificate per service, and a service
process gets its own in ``X0_TLS__*`` (the broker's ACLs name it); tools and tests
connect as ``ops``.
"""

from __future__ import annotations

import itertools
import os
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path

from x0_common.settings import PostgresSettings, RedisSettings

__all__ = [
    "CREDENTIALS_VARIABLE",
    "IDENTITY_VARIABLE",
    "SERVICES",
    "credentials_folder",
    "identity_folder",
    "service_environment",
    "service_of",
    "service_stores",
    "tls_environment",
]

#: The services with a role and a user of their own (also their schemas' names).
SERVICES = ("gateway", "crypto", "rag", "telemetry")
#: Names the folder holding the password files.
CREDENTIALS_VARIABLE = "X0_STACK_CREDENTIALS"
#: Names the folder of the stack's identities (x0_common.identity.development).
IDENTITY_VARIABLE = "X0_STACK_IDENTITY"


def identity_folder(environment: Mapping[str, str] | None = None) -> Path | None:
    """The stack's identity folder named in ``environment`` (default: this process's),
    when it exists."""
    value = (os.environ if environment is None else environment).get(IDENTITY_VARIABLE)
    folder = Path(value) if value else None
    return folder if folder is not None and folder.is_dir() else None


def tls_environment(name: str, folder: Path) -> dict[str, str]:
    """The ``X0_TLS__*`` variables of identity ``name`` in the stack's ``folder``."""
    return {
        "X0_TLS__CERT_FILE": str(folder / name / "cert.pem"),
        "X0_TLS__KEY_FILE": str(folder / name / "key.pem"),
        "X0_TLS__BUNDLE_FILE": str(folder / name / "bundle.pem"),
    }


def credentials_folder(environment: Mapping[str, str] | None = None) -> Path | None:
    """The stack's credentials folder named in ``environment`` (default: this process's),
    when it exists."""
    value = (os.environ if environment is None else environment).get(CREDENTIALS_VARIABLE)
    folder = Path(value) if value else None
    return folder if folder is not None and folder.is_dir() else None


def _as_user(url: str, user: str) -> str:
    """``url`` with ``user`` and no password (the password comes from a file)."""
    parts = urllib.parse.urlsplit(url)
    address = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{urllib.parse.quote(user)}@{address}").geturl()


def service_environment(
    service: str, environment: Mapping[str, str], credentials: Path | None = None
) -> dict[str, str]:
    """The ``X0_POSTGRES__*`` and ``X0_REDIS__*`` variables that make ``service`` connect
    as itself to the servers (and database) named in ``environment``; empty without a
    credentials folder (``credentials``, else ``environment``'s ``X0_STACK_CREDENTIALS``)."""
    if service not in SERVICES:
        msg = f"not an x0 service: {service!r} (one of {', '.join(SERVICES)})"
        raise ValueError(msg)
    folder = credentials or credentials_folder(environment)
    # Beside the credentials folder (stack.sh's <state folder>/identity) unless named.
    identities = identity_folder(environment) or (
        folder.parent / "identity" if folder and (folder.parent / "identity").is_dir() else None
    )
    tls = tls_environment(service, identities) if identities is not None else {}
    if folder is None:
        return tls
    dsn = environment.get("X0_POSTGRES__DSN") or PostgresSettings().dsn.get_secret_value()
    url = environment.get("X0_REDIS__URL") or RedisSettings().url.get_secret_value()
    return {
        **tls,
        "X0_POSTGRES__DSN": _as_user(dsn, service),
        "X0_POSTGRES__PASSWORD_FILE": str(folder / f"postgres-{service}.password"),
        "X0_REDIS__URL": _as_user(url, service),
        "X0_REDIS__PASSWORD_FILE": str(folder / f"redis-{service}.password"),
    }


def service_stores(
    service: str, environment: Mapping[str, str], credentials: Path | None = None
) -> tuple[PostgresSettings, RedisSettings]:
    """:func:`service_environment` as settings, for a service run in process (a test's
    gateway); the admin's settings from ``environment`` without a credentials folder."""
    variables = {**environment, **service_environment(service, environment, credentials)}
    postgres = {
        "dsn": variables.get("X0_POSTGRES__DSN"),
        "password_file": variables.get("X0_POSTGRES__PASSWORD_FILE"),
    }
    redis = {
        "url": variables.get("X0_REDIS__URL"),
        "password_file": variables.get("X0_REDIS__PASSWORD_FILE"),
    }
    return (
        PostgresSettings.model_validate({k: v for k, v in postgres.items() if v}),
        RedisSettings.model_validate({k: v for k, v in redis.items() if v}),
    )


def service_of(command: Sequence[str]) -> str | None:
    """The x0 service a command line runs (``... -m x0_rag``), else ``None``."""
    for flag, module in itertools.pairwise(command):
        if flag == "-m" and module.startswith("x0_") and module[3:] in SERVICES:
            return module[3:]
    return None
