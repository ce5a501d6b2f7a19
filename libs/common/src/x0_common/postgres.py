"""PostgreSQL: one pool per service, and the service's own schema migrations.

Each service owns one schema (``crypto``, ``rag``, ``telemetry``) and keeps its
migrations as ordered ``NNN_name.sql`` files in its package. They are applied at
start-up, each in its own transaction, under an advisory lock so that replicas
starting together apply them once. A file is never edited after it shipped; a
change is a new file. (Alembic would need SQLAlchemy on top of asyncpg for what
these ~40 lines do.)
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from x0_common.errors import Unavailable
from x0_common.settings import PostgresSettings, read_password

logger = logging.getLogger(__name__)

# Failures that may pass: the connection or server went away, too many connections,
# an administrator restart, a serialisation failure or deadlock. Handlers raise them as
# Unavailable, which the responder retries.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
)

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def _read_migrations(folder: Path) -> list[tuple[str, str]]:
    return [(path.name, path.read_text()) for path in sorted(folder.glob("*.sql"))]


@asynccontextmanager
async def unavailable_when_transient(store: str, operation: str) -> AsyncIterator[None]:
    """Turn transient PostgreSQL failures into :class:`Unavailable` (the responder retries).

    Only the exception's class is kept: its text may quote a statement's values.
    """
    try:
        yield
    except TRANSIENT_ERRORS as error:
        logger.warning(
            "%s: database unavailable",
            store,
            extra={"operation": operation, "error": type(error).__name__},
        )
        raise Unavailable(
            f"the {store} is unavailable", details={"reason": "postgres", "operation": operation}
        ) from None


async def create_pool(settings: PostgresSettings) -> asyncpg.Pool:
    """A connection pool for the service; close it in the lifespan's exit.

    With ``settings.password_file``, every new connection reads the password from it
    (asyncpg calls the function per connection), so a rotated secret needs no restart.
    """
    file = settings.password_file
    pool = await asyncpg.create_pool(
        settings.dsn.get_secret_value(),
        min_size=settings.min_pool_size,
        max_size=settings.max_pool_size,
        **({} if file is None else {"password": lambda: read_password(file)}),
    )
    assert pool is not None  # create_pool returns None only when not awaited
    return pool


async def migrate(pool: asyncpg.Pool, schema: str, migrations: Path) -> list[str]:
    """Apply the ``*.sql`` files of ``migrations`` not yet applied to ``schema``.

    Migrations run as the schema's owner, so every object they create belongs to it:
    a service's role owns its schema (made by the operator, docs/security.md), and a
    tool connected as another role that is a member of the owner (the local stack's
    admin ``x0``) switches to it with ``SET ROLE``. A schema that does not exist yet is
    created, owned by the connected role (a scratch database, a single-role setup).

    Returns the names applied now (empty when the schema is up to date).
    """
    if not _SCHEMA_NAME.fullmatch(schema):
        msg = f"not a plain schema name: {schema!r}"
        raise ValueError(msg)
    files = _read_migrations(migrations)
    lock_id = int.from_bytes(hashlib.sha256(f"x0-migrate:{schema}".encode()).digest()[:8], "big")
    lock_id -= 1 << 63  # advisory locks take a signed bigint
    applied_now: list[str] = []
    async with pool.acquire() as connection:
        await connection.execute("SELECT pg_advisory_lock($1)", lock_id)
        try:
            # Not CREATE SCHEMA IF NOT EXISTS: that needs CREATE on the database even
            # when the schema exists, and a service's role has no such privilege.
            owner = await connection.fetchrow(
                "SELECT nspowner::regrole::text AS role, pg_get_userbyid(nspowner) = current_user"
                " AS mine FROM pg_namespace WHERE nspname = $1",
                schema,
            )
            if owner is None:
                await connection.execute(f'CREATE SCHEMA "{schema}"')
            elif not owner["mine"]:
                # regrole's text is a quoted identifier already.
                await connection.execute(f"SET ROLE {owner['role']}")
            await connection.execute(
                f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            # The schema name is checked above; identifiers cannot be bound parameters.
            rows = await connection.fetch(f'SELECT name FROM "{schema}".schema_migrations')  # noqa: S608
            done = {row["name"] for row in rows}
            for name, sql in files:
                if name in done:
                    continue
                async with connection.transaction():
                    await connection.execute(sql)
                    await connection.execute(
                        f'INSERT INTO "{schema}".schema_migrations (name) VALUES ($1)',  # noqa: S608
                        name,
                    )
                applied_now.append(name)
                logger.info("migration applied", extra={"schema": schema, "migration": name})
        finally:
            await connection.execute("RESET ROLE")
            await connection.execute("SELECT pg_advisory_unlock($1)", lock_id)
    return applied_now
