"""The node gauges, recomputed from the latest state every ``gauges_refresh_seconds``.

``x0_telemetry_nodes{mesh_id,status}`` counts every live node of every mesh (all
four statuses, zeros included, so an alert on ``down > 0`` sees a series); at most
``max_mesh_series`` meshes get a label of their own, the rest are counted together
under ``mesh_id="_other"``. The
node-labelled gauges (heartbeat age, mean link quality) exist only for the nodes
:class:`~x0_telemetry.domain.series.SeriesCap` admits; a node that expires or is
refused has its series removed. Every replica reads the whole latest state, so all
replicas export the same values (aggregate with ``max``, not ``sum``). Ages are as
of the last refresh. The worker runs :meth:`NodeGauges.refresh` as a background job
(``x0_common.worker.Periodic``): at start-up, then every ``gauges_refresh_seconds``.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from x0_telemetry.deps import TelemetryDeps
from x0_telemetry.domain.series import OTHER_MESHES, SeriesCap, counts_by_mesh
from x0_telemetry.domain.state import epoch_ms, mean_link_quality
from x0_telemetry.handlers.queries import read_nodes
from x0_telemetry.metrics import SERVICE

STATUSES = ("up", "degraded", "draining", "down")


class NodeGauges:
    """Keeps the node gauges in step with the latest state."""

    def __init__(self, deps: TelemetryDeps) -> None:
        self._deps = deps
        self._cap = SeriesCap(deps.settings.max_node_series)
        self._mesh_cap = SeriesCap(deps.settings.max_mesh_series)
        self._meshes: set[str] = set()
        self._labels: dict[str, str] = {}  # node id -> mesh id of its series

    async def refresh(self) -> None:
        """Recompute every node gauge from Redis now."""
        metrics = self._deps.metrics
        now = datetime.now(UTC)
        await self._deps.latest.forget_stale(epoch_ms(now))
        nodes = await read_nodes(self._deps, None)
        present = {node.mesh_id for node in nodes}
        kept = self._mesh_cap.refresh(present).tracked
        counts = counts_by_mesh(((node.mesh_id, node.status) for node in nodes), kept)
        meshes = set(kept) | ({OTHER_MESHES} if present - set(kept) else set())
        for mesh_id in self._meshes - meshes:
            for status in STATUSES:
                with contextlib.suppress(KeyError):
                    metrics.nodes.remove(SERVICE, mesh_id, status)
        for mesh_id in meshes:
            for status in STATUSES:
                metrics.nodes.labels(SERVICE, mesh_id, status).set(counts[(mesh_id, status)])
        self._meshes = meshes

        by_id = {node.node_id: node for node in nodes}
        change = self._cap.refresh(by_id)
        if change.newly_refused:
            metrics.node_series_dropped.labels(SERVICE).inc(change.newly_refused)
        for node_id in change.removed:
            self._remove(node_id)
        for node_id in change.tracked:
            node = by_id[node_id]
            if self._labels.get(node_id, node.mesh_id) != node.mesh_id:
                self._remove(node_id)  # moved mesh: the old series would linger
            self._labels[node_id] = node.mesh_id
            if node.last_heartbeat is not None:
                age = (now - node.last_heartbeat).total_seconds()
                metrics.heartbeat_age.labels(SERVICE, node.mesh_id, node_id).set(max(age, 0.0))
            quality = mean_link_quality(node)
            if quality is not None:
                metrics.link_quality.labels(SERVICE, node.mesh_id, node_id).set(quality)

    def _remove(self, node_id: str) -> None:
        mesh_id = self._labels.pop(node_id, None)
        if mesh_id is None:
            return
        for gauge in (self._deps.metrics.heartbeat_age, self._deps.metrics.link_quality):
            with contextlib.suppress(KeyError):
                gauge.remove(SERVICE, mesh_id, node_id)
