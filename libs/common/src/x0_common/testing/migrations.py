"""Test a schema migration on data written before it: a scratch database, and the
service's migrations applied up to a given file.

    async with scratch_pool(stack.postgres_dsn, "crypto", MIGRATIONS, "002_mesh.sql") as pool:
        ...  # rows as the earlier code wrote them
        await migrate(pool, "crypto", MIGRATIONS)  # applies the rest
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from x0_common.postgres import migrate

__all__ = ["migrate_to", "scratch_database", "scratch_pool"]


@asynccontextmanager
async def scratch_database(dsn: str) -> AsyncIterator[str]:
    """A new, empty database on the server of ``dsn`` (whose role may create databases),
    dropped afterwards; yields its DSN."""
    name = f"x0_scratch_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield urllib.parse.urlsplit(dsn)._replace(path=f"/{name}").geturl()
    finally:
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def _copy_up_to(migrations: Path, last: str, folder: str) -> None:
    for path in sorted(migrations.glob("*.sql")):
        if path.name <= last:
            shutil.copy(path, folder)


async def migrate_to(pool: asyncpg.Pool, schema: str, migrations: Path, last: str) -> list[str]:
    """Apply the ``*.sql`` files of ``migrations`` up to and including ``last``."""
    with tempfile.TemporaryDirectory() as folder:
        _copy_up_to(migrations, last, folder)
        return await migrate(pool, schema, Path(folder))


@asynccontextmanager
async def scratch_pool(
    dsn: str, schema: str, migrations: Path, last: str
) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on a :func:`scratch_database` whose ``schema`` is migrated up to and
    including ``last``; closed and dropped afterwards."""
    async with scratch_database(dsn) as scratch:
        pool = await asyncpg.create_pool(scratch, min_size=1, max_size=2)
        assert pool is not None
        try:
            await migrate_to(pool, schema, migrations, last)
            yield pool
        finally:
            await pool.close()
