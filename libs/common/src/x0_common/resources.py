"""What a worker opens at start-up and hands to its handlers, typed.

A worker's dependencies (``CryptoDeps``, ``RagDeps``, ``TelemetryDeps``) are built
before the broker starts, but their pools, clients and stores open only in the
start-up hook. :class:`Opened` is the one way to declare such a field: typed like the
resource, set once start-up opened it, and failing clearly when read before::

    class RagDeps:
        indexes = Opened["IndexManager"]()

    deps.indexes = IndexManager(...)      # in the start-up hook
    await deps.indexes.search(...)        # in a handler: typed as IndexManager

:class:`Stores` is what every stateful worker opens the same way: the PostgreSQL pool
(its schema migrated) and the Redis client, with their readiness checks.
:func:`x0_common.worker.build_worker_app` opens it first and closes it last.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from x0_common.errors import InternalError

if TYPE_CHECKING:
    import asyncpg
    from redis.asyncio import Redis

    from x0_common.settings import CommonSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")
Check = Callable[[], Awaitable[bool]]


class NotOpened(InternalError):
    """A resource read before start-up opened it (or after shutdown closed it).

    A wiring mistake, not a passing failure: the responder answers ``internal`` and
    does not retry.
    """


class Opened(Generic[T]):
    """A field set at start-up: read before it is set, it raises :class:`NotOpened`.

    A descriptor: declare it on the class (``pool = Opened[asyncpg.Pool]()``), assign
    the resource on the instance, ``del`` it when closed. The value lives in the
    instance's ``__dict__``, so the owner must not use ``__slots__``.
    """

    def __init__(self, what: str | None = None) -> None:
        # What the resource is, for the error (the field's name when not given).
        self._what = what
        self._name = "<unnamed>"
        self._slot = "_opened_unnamed"

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = f"{owner.__name__}.{name}"
        self._slot = f"_opened_{name}"
        self._what = self._what or name

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Opened[T]: ...
    @overload
    def __get__(self, instance: object, owner: type[Any]) -> T: ...
    def __get__(self, instance: object | None, owner: type[Any]) -> Opened[T] | T:
        if instance is None:
            return self
        try:
            value: T = instance.__dict__[self._slot]
        except KeyError:
            raise NotOpened(
                f"{self._what}: not open in this worker ({self._name} is opened at start-up)"
            ) from None
        return value

    def __set__(self, instance: object, value: T) -> None:
        instance.__dict__[self._slot] = value

    def __delete__(self, instance: object) -> None:
        instance.__dict__.pop(self._slot, None)

    def is_open(self, instance: object) -> bool:
        """Whether ``instance`` holds the resource now."""
        return self._slot in instance.__dict__


@dataclass(eq=False)
class Stores:
    """The worker's PostgreSQL pool and Redis client, opened at start-up.

    ``open`` creates the pool, applies the service's migrations to its schema, and
    creates the Redis client (whose connections open lazily); ``close`` closes both.
    Tests and tools that hold a pool and a client already use :meth:`of`.
    """

    pool = Opened["asyncpg.Pool"]()
    redis = Opened["Redis"]()

    settings: CommonSettings | None = None
    _: KW_ONLY
    schema: str
    migrations: Path | None = None
    decode_responses: bool = False

    @classmethod
    def of(cls, pool: asyncpg.Pool, redis: Redis | None = None, *, schema: str = "") -> Stores:
        """Stores around a pool (and a client) opened elsewhere: tests and tools."""
        stores = cls(schema=schema)
        stores.pool = pool
        if redis is not None:
            stores.redis = redis
        return stores

    async def open(self) -> None:
        """Create the pool, migrate the schema, create the Redis client."""
        # Imported here: importing x0_common.resources must not need the clients.
        from x0_common.postgres import create_pool, migrate  # noqa: PLC0415
        from x0_common.redis_client import create_redis  # noqa: PLC0415

        if self.settings is None:
            msg = "Stores without settings cannot open; use Stores.of(pool, redis)"
            raise RuntimeError(msg)
        pool = await create_pool(self.settings.postgres)
        self.pool = pool
        if self.migrations is not None:
            await migrate(pool, self.schema, self.migrations)
        self.redis = create_redis(self.settings.redis, decode_responses=self.decode_responses)

    async def close(self) -> None:
        """Close what :meth:`open` opened (safe after a failed or partial start)."""
        if Stores.redis.is_open(self):
            await self.redis.aclose()
            del self.redis
        if Stores.pool.is_open(self):
            await self.pool.close()
            del self.pool

    async def postgres_answers(self) -> bool:
        """Readiness: the pool runs a query."""
        return bool(await self.pool.fetchval("SELECT 1"))

    async def redis_answers(self) -> bool:
        """Readiness: Redis answers PING."""
        return bool(await self.redis.ping())

    def checks(self) -> dict[str, Check]:
        """The readiness checks, by name (``postgres``, ``redis``)."""
        return {"postgres": self.postgres_answers, "redis": self.redis_answers}
