"""Redis latest state per node, changed only by newer events (one Lua script per batch).

Every tenant has its own keys: the worker reads and writes through
``LatestStore.of(tenant)``, whose prefix is ``x0:telemetry:<tenant>:`` (the same node
or mesh id in two tenants is two nodes or meshes). ``x0:telemetry:tenants`` is a
sorted set of the tenants with state, scored by their last change, for the gauges
(which export every tenant's nodes). Keys under a tenant's prefix:

- ``node:<node_id>``: a hash of the node's latest state (fields in
  :mod:`x0_telemetry.domain.state`), expiring ``latest_ttl_seconds`` after its last
  change;
- ``mesh:<mesh_id>``: a sorted set of the mesh's node ids, scored by when this
  service last changed their state (ms), so a reader skips members whose hash has
  expired; a node that moves to another mesh leaves the old set;
- ``meshes``: a sorted set of mesh ids, scored the same way;
- ``nodes``: a sorted set of the node ids admitted under the tenant's node quota,
  scored by their last event (ms); a node silent for ``latest_ttl_seconds`` leaves it.

The script applies a batch's updates atomically, each only if its timestamp is newer
than the stored one of its kind (heartbeat or metrics): out-of-order and redelivered
events never regress the state, and re-applying a batch changes nothing. The keys
are built inside the script, so it needs one Redis (not a cluster).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from x0_telemetry.errors import Unavailable

PREFIX = "x0:telemetry:"

_APPLY = """
local prefix = ARGV[1]
local ttl = tonumber(ARGV[2])
local now = ARGV[3]
local updates = cjson.decode(ARGV[4])
local tenants = ARGV[5]
local tenant = ARGV[6]
local applied = 0
local touched = {}
for _, u in ipairs(updates) do
  local key = prefix .. 'node:' .. u.n
  local ts_field = 'm_ms'
  if u.k == 'h' then ts_field = 'hb_ms' end
  local t = tonumber(u.t)
  local stored = redis.call('HMGET', key, ts_field, 'seen_ms', 'mesh_id')
  if t > (tonumber(stored[1]) or -1) then
    local mesh = stored[3]
    local fields
    if u.k == 'h' then
      fields = {'hb_ms', u.t, 'status', u.status, 'version', u.version}
    else
      fields = {'m_ms', u.t, 'cpu', u.cpu, 'memory', u.memory, 'rtt_ms', u.rtt_ms,
        'packet_loss', u.packet_loss, 'throughput_bps', u.throughput_bps,
        'neighbours', u.neighbours}
    end
    -- The newest event of either kind says which mesh the node is in.
    if t >= (tonumber(stored[2]) or -1) then
      if mesh and mesh ~= u.m then
        redis.call('ZREM', prefix .. 'mesh:' .. mesh, u.n)
      end
      mesh = u.m
      table.insert(fields, 'seen_ms')
      table.insert(fields, u.t)
      table.insert(fields, 'mesh_id')
      table.insert(fields, u.m)
    end
    redis.call('HSET', key, unpack(fields))
    redis.call('EXPIRE', key, ttl)
    redis.call('ZADD', prefix .. 'mesh:' .. mesh, now, u.n)
    touched[mesh] = true
    applied = applied + 1
  end
end
for mesh, _ in pairs(touched) do
  redis.call('EXPIRE', prefix .. 'mesh:' .. mesh, ttl)
  redis.call('ZADD', prefix .. 'meshes', now, mesh)
end
if next(touched) ~= nil then
  redis.call('EXPIRE', prefix .. 'meshes', ttl)
  if tenant ~= '' then
    redis.call('ZADD', tenants, now, tenant)
    redis.call('EXPIRE', tenants, ttl)
  end
end
return applied
"""

# Admits node ids under a quota, atomically: known ones are refreshed, new ones take
# free places while there are some; returns the ids refused.
_ADMIT = """
local key = ARGV[1]
local now = tonumber(ARGV[2])
local ttl_ms = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local ids = cjson.decode(ARGV[5])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - ttl_ms)
local count = redis.call('ZCARD', key)
local refused = {}
for _, id in ipairs(ids) do
  if redis.call('ZSCORE', key, id) then
    redis.call('ZADD', key, now, id)
  elseif count < limit then
    redis.call('ZADD', key, now, id)
    count = count + 1
  else
    table.insert(refused, id)
  end
end
redis.call('PEXPIRE', key, ttl_ms)
return refused
"""

_READ_CHUNK = 500


class LatestStore:
    """The latest state of every node, in Redis: a tenant's when ``tenant`` is set."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        ttl_seconds: int,
        prefix: str = PREFIX,
        tenant: str | None = None,
    ) -> None:
        self._redis = client
        self._ttl = ttl_seconds
        self._root = prefix
        self.tenant = tenant
        self._prefix = prefix if tenant is None else f"{prefix}{tenant}:"
        self._apply = client.register_script(_APPLY)
        self._admit = client.register_script(_ADMIT)
        self._tenants: dict[str, LatestStore] = {}

    def of(self, tenant: str) -> LatestStore:
        """``tenant``'s latest state."""
        store = self._tenants.get(tenant)
        if store is None:
            store = LatestStore(
                self._redis, ttl_seconds=self._ttl, prefix=self._root, tenant=tenant
            )
            self._tenants[tenant] = store
        return store

    async def tenants(self, now_ms: int) -> list[str]:
        """Tenants with a node changed within the TTL."""
        async with _unavailable():
            tenants = await self._redis.zrangebyscore(
                f"{self._root}tenants", now_ms - self._ttl * 1000, "+inf"
            )
        return sorted(cast("list[str]", tenants))

    async def admit(self, node_ids: Sequence[str], now_ms: int, limit: int) -> set[str]:
        """Admit ``node_ids`` under a quota of ``limit`` live nodes; the ids refused."""
        if not node_ids:
            return set()
        try:
            refused = await self._admit(
                args=[
                    f"{self._prefix}nodes",
                    now_ms,
                    self._ttl * 1000,
                    limit,
                    json.dumps(list(node_ids)),
                ]
            )
        except (RedisError, OSError) as error:
            raise Unavailable(
                "the latest-state store is unavailable", details={"reason": "redis"}
            ) from error
        return {_text(node_id) for node_id in refused}

    async def apply(self, updates: Sequence[dict[str, Any]], now_ms: int) -> int:
        """Apply ``updates`` (from ``domain.state.latest_update``); return how many changed."""
        if not updates:
            return 0
        # Timestamps travel as text: Lua numbers print large integers in exponent form.
        payload = json.dumps([{**u, "t": str(u["t"])} for u in updates], separators=(",", ":"))
        try:
            applied = await self._apply(
                args=[
                    self._prefix,
                    self._ttl,
                    now_ms,
                    payload,
                    f"{self._root}tenants",
                    self.tenant or "",
                ]
            )
        except (RedisError, OSError) as error:
            raise Unavailable(
                "the latest-state store is unavailable", details={"reason": "redis"}
            ) from error
        return int(applied)

    async def node(self, node_id: str) -> dict[str, str]:
        """The stored fields of one node (empty when unknown or expired)."""
        async with _unavailable():
            fields = await self._redis.hgetall(f"{self._prefix}node:{node_id}")
        # The client decodes responses (decode_responses=True): every value is text.
        return cast("dict[str, str]", fields)

    async def meshes(self, now_ms: int) -> list[str]:
        """Mesh ids with a node changed within the TTL."""
        async with _unavailable():
            meshes = await self._redis.zrangebyscore(
                f"{self._prefix}meshes", now_ms - self._ttl * 1000, "+inf"
            )
        return sorted(cast("list[str]", meshes))

    async def members(self, mesh_id: str, now_ms: int) -> list[str]:
        """Node ids of ``mesh_id`` changed within the TTL."""
        async with _unavailable():
            members = await self._redis.zrangebyscore(
                f"{self._prefix}mesh:{mesh_id}", now_ms - self._ttl * 1000, "+inf"
            )
        return cast("list[str]", members)

    async def nodes(self, mesh_ids: Iterable[str], now_ms: int) -> list[tuple[str, dict[str, str]]]:
        """(node id, fields) of every live node of ``mesh_ids``, in node id order."""
        wanted: list[tuple[str, str]] = []
        for mesh_id in mesh_ids:
            wanted.extend((node_id, mesh_id) for node_id in await self.members(mesh_id, now_ms))
        wanted.sort()
        found: list[tuple[str, dict[str, str]]] = []
        for start in range(0, len(wanted), _READ_CHUNK):
            chunk = wanted[start : start + _READ_CHUNK]
            async with _unavailable():
                pipe = self._redis.pipeline(transaction=False)
                for node_id, _ in chunk:
                    pipe.hgetall(f"{self._prefix}node:{node_id}")
                results = await pipe.execute()
            for (node_id, mesh_id), fields in zip(chunk, results, strict=True):
                # Expired, or moved to another mesh since the member was listed.
                if fields and fields.get("mesh_id") == mesh_id:
                    found.append((node_id, fields))
        return found

    async def forget_stale(self, now_ms: int) -> None:
        """Drop members and meshes whose state expired (keeps the sorted sets small)."""
        cutoff = now_ms - self._ttl * 1000
        async with _unavailable():
            meshes = cast("list[str]", await self._redis.zrange(f"{self._prefix}meshes", 0, -1))
            for mesh_id in meshes:
                await self._redis.zremrangebyscore(f"{self._prefix}mesh:{mesh_id}", "-inf", cutoff)
            await self._redis.zremrangebyscore(f"{self._prefix}meshes", "-inf", cutoff)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@asynccontextmanager
async def _unavailable() -> AsyncIterator[None]:
    """Turn Redis failures into :class:`Unavailable` (queries are retried by the responder)."""
    try:
        yield
    except (RedisError, OSError):
        raise Unavailable(
            "the latest-state store is unavailable", details={"reason": "redis"}
        ) from None
