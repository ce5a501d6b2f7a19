"""The node gauges, recomputed from the latest state every ``gauges_refresh_seconds``.

``x0_telemetry_nodes{mesh_id,status}`` counts every live node of every mesh (all
four statuses, zeros included, so an alert on ``down > 0`` sees a series); at most
``max_mesh_series`` meshes get a label of their own, the rest are counted together
under ``mesh_id="_other"``. The
node-labelled gauges (heartbeat age, mean link quality) exist only for the nodes
:class:`~x0_telemetry.domain.series.SeriesCap` admits; a node that expires or is
refused has its series removed. Every replica reads the whole latest state, so all
replicas export the same values (aggregate with ``max``, not ``sum``). Ages are as
of the last refresh. Every tenant's nodes are exported: a tenant other than the
default one is in the label, ``mesh_id="<tenant>/<mesh>"`` (the default tenant's
meshes keep their bare ids). The worker runs :meth:`NodeGauges.refresh` as a background job
(``x0_common.worker.Periodic``): at start-up, then every ``gauges_refresh_seconds``.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from x0_common.events.telemetry import NodeState
from x0_common.principal import qualified
from x0_telemetry.deps import TelemetryDeps
from x0_telemetry.domain.series import OTHER_MESHES, SeriesCap, counts_by_mesh
from x0_telemetry.domain.state import epoch_ms, mean_link_quality
from x0_telemetry.handlers.queries import read_nodes
from x0_telemetry.metrics import SERVICE

STATUSES = ("up", "degraded", "draining", "down")


class NodeGauges:
    """Keeps the node gauges in step with the latest state of every tenant."""

    def __init__(self, deps: TelemetryDeps) -> None:
        self._deps = deps
        self._cap = SeriesCap(deps.settings.max_node_series)
        self._mesh_cap = SeriesCap(deps.settings.max_mesh_series)
        self._meshes: set[str] = set()
        # Node key (``qualified(tenant, node_id)``) -> the (mesh label, node id) of its series.
        self._labels: dict[str, tuple[str, str]] = {}

    async def _every_node(self, now_ms: int) -> list[tuple[str, str, NodeState]]:
        """(node key, mesh label, node) of every live node of every tenant."""
        latest = self._deps.latest
        found: list[tuple[str, str, NodeState]] = []
        for tenant in await latest.tenants(now_ms):
            await latest.of(tenant).forget_stale(now_ms)
            for node in await read_nodes(self._deps, tenant, None):
                key = qualified(tenant, node.node_id)
                found.append((key, qualified(tenant, node.mesh_id), node))
        return found

    async def refresh(self) -> None:
        """Recompute every node gauge from Redis now."""
        metrics = self._deps.metrics
        now = datetime.now(UTC)
        labelled = await self._every_node(epoch_ms(now))
        present = {mesh for _, mesh, _ in labelled}
        kept = self._mesh_cap.refresh(present).tracked
        counts = counts_by_mesh(((mesh, node.status) for _, mesh, node in labelled), kept)
        meshes = set(kept) | ({OTHER_MESHES} if present - set(kept) else set())
        for mesh_id in self._meshes - meshes:
            for status in STATUSES:
                with contextlib.suppress(KeyError):
                    metrics.nodes.remove(SERVICE, mesh_id, status)
        for mesh_id in meshes:
            for status in STATUSES:
                metrics.nodes.labels(SERVICE, mesh_id, status).set(counts[(mesh_id, status)])
        self._meshes = meshes

        by_key = {key: (mesh, node) for key, mesh, node in labelled}
        change = self._cap.refresh(by_key)
        if change.newly_refused:
            metrics.node_series_dropped.labels(SERVICE).inc(change.newly_refused)
        for key in change.removed:
            self._remove(key)
        for key in change.tracked:
            mesh, node = by_key[key]
            if self._labels.get(key, (mesh, node.node_id)) != (mesh, node.node_id):
                self._remove(key)  # moved mesh: the old series would linger
            self._labels[key] = (mesh, node.node_id)
            if node.last_heartbeat is not None:
                age = (now - node.last_heartbeat).total_seconds()
                metrics.heartbeat_age.labels(SERVICE, mesh, node.node_id).set(max(age, 0.0))
            quality = mean_link_quality(node)
            if quality is not None:
                metrics.link_quality.labels(SERVICE, mesh, node.node_id).set(quality)

    def _remove(self, key: str) -> None:
        labels = self._labels.pop(key, None)
        if labels is None:
            return
        for gauge in (self._deps.metrics.heartbeat_age, self._deps.metrics.link_quality):
            with contextlib.suppress(KeyError):
                gauge.remove(SERVICE, *labels)
