"""Mesh nodes, which report in at a steady rate, and operators, who read what they report.

A mesh node user is one node of the run's mesh (``load-<run>``): each request posts its
heartbeat and metrics (two events, naming the previous node as its neighbour) to
``POST /v1/telemetry/events``. An operator lists the mesh's nodes, reads one node and
its last ten minutes of history, and the mesh's topology, on the seeded nodes (which
exist before the load starts, whether or not mesh node users run).
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from locust import task

from load import seed
from load.users.base import RUN_ID, X0User

HISTORY_WINDOW = timedelta(minutes=10)
_numbers = itertools.count(1)


class MeshNode(X0User):
    """A mesh node (class ``mesh``)."""

    caller_class = "mesh"

    def prepare(self) -> None:
        number = next(_numbers)
        self.node_id = f"load-{RUN_ID}-node-{number}"
        self.neighbour = f"load-{RUN_ID}-node-{max(1, number - 1)}"

    @task
    def report(self) -> None:
        mesh_id = seed.seeded().mesh_id
        self.call(
            "publish_events",
            body={"events": seed.node_events(self.node_id, mesh_id, [self.neighbour])},
            check=lambda a: None if a.get("accepted") == 2 else f"accepted {a.get('accepted')}",
        )


class Operator(X0User):
    """An operator watching the mesh (class ``operators``)."""

    caller_class = "operators"

    def prepare(self) -> None:
        self.rng = random.Random(f"{RUN_ID}-operator-{next(_numbers)}")  # noqa: S311

    def node(self) -> str:
        return self.rng.choice(seed.seeded().nodes)

    @task(2)
    def list_nodes(self) -> None:
        self.call(
            "list_nodes",
            query={"mesh_id": seed.seeded().mesh_id},
            check=lambda a: None if a.get("nodes") else "no nodes listed",
        )

    @task(3)
    def get_node(self) -> None:
        self.call("get_node", path={"node_id": self.node()})

    @task(2)
    def node_history(self) -> None:
        end = datetime.now(UTC)
        self.call(
            "node_history",
            path={"node_id": self.node()},
            query={"start": (end - HISTORY_WINDOW).isoformat(), "end": end.isoformat()},
        )

    @task(1)
    def topology(self) -> None:
        self.call(
            "topology",
            query={"mesh_id": seed.seeded().mesh_id},
            check=lambda a: None if a.get("nodes") else "no nodes in the topology",
        )
