"""The cap on node-labelled metric series.

A flood of fake node ids must not create unbounded Prometheus series, so at most
``limit`` nodes hold series at a time. Nodes that hold one keep it while they are
present; free places go to new nodes in ``node_id`` order; a node refused a place is
counted once (up to a memory of ``10 * limit`` refused ids, past which a refusal may
be counted again).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

# The mesh label of nodes whose mesh was refused a series of its own; a real mesh id
# starts with a letter or digit, so it cannot be this.
OTHER_MESHES: Final = "_other"


@dataclass(frozen=True, slots=True)
class SeriesChange:
    """What one refresh changes: series to keep or add, to remove, and new refusals."""

    tracked: list[str]
    removed: list[str]
    newly_refused: int


class SeriesCap:
    """Decides which nodes hold node-labelled series."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._tracked: set[str] = set()
        self._refused: OrderedDict[str, None] = OrderedDict()

    @property
    def tracked(self) -> frozenset[str]:
        """Nodes holding series now."""
        return frozenset(self._tracked)

    def refresh(self, present: Iterable[str]) -> SeriesChange:
        """Update the tracked set to the nodes ``present`` now, within the cap."""
        present_set = set(present)
        removed = sorted(self._tracked - present_set)
        self._tracked &= present_set
        newly_refused = 0
        for node_id in sorted(present_set - self._tracked):
            if len(self._tracked) < self.limit:
                self._tracked.add(node_id)
                self._refused.pop(node_id, None)
            elif node_id not in self._refused:
                newly_refused += 1
                self._refused[node_id] = None
                if len(self._refused) > 10 * max(self.limit, 1):
                    self._refused.popitem(last=False)
        return SeriesChange(sorted(self._tracked), removed, newly_refused)


def counts_by_mesh(
    nodes: Iterable[tuple[str, str]], kept: Iterable[str]
) -> Counter[tuple[str, str]]:
    """Nodes per ``(mesh_id, status)`` from ``(mesh_id, status)`` pairs, with every mesh
    not in ``kept`` counted under :data:`OTHER_MESHES`: a flood of fake mesh ids adds
    nothing but counts, and no node goes uncounted."""
    kept_set = set(kept)
    return Counter(
        (mesh_id if mesh_id in kept_set else OTHER_MESHES, status) for mesh_id, status in nodes
    )
