"""The locustfile: the caller classes of the plan, seeding, and a per-request record.

Run by ``python -m load.run`` (``make load``), which resolves the plan, starts Locust
headless with this file and checks the SLOs afterwards. By hand, for Locust's web UI
against ``make up``'s system::

    PYTHONPATH=. .venv/bin/locust -f load/locustfile.py

At test start it seeds what the users need (load/seed.py); at the end it deletes the
collection and, when ``X0_LOAD_RESULTS`` names a folder, writes ``requests.csv`` (one
row per request: time, caller class, phase, name, outcome, milliseconds, HTTP status
and whether it had Retry-After) and ``run.json`` (the plan, the seeded names, when
spawning completed and stopping began), which the charts and the throughput checks are
drawn from.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

# Locust puts this file's folder on sys.path; the package lives one level up.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
from locust import events

from load import seed
from load.users.base import PLAN, RATE_LIMITED, RUN_ID
from load.users.crypto import KeyExchangeClient
from load.users.rag import RagUser
from load.users.telemetry import MeshNode, Operator

__all__ = ["KeyExchangeClient", "MeshNode", "Operator", "RagUser"]

logger = logging.getLogger("load")
RESULTS = Path(os.environ["X0_LOAD_RESULTS"]) if os.environ.get("X0_LOAD_RESULTS") else None
# (unix time, caller class, phase, name, outcome, ms, HTTP status (0: no answer), whether
# the answer had Retry-After), appended by the request hook.
records: list[tuple[float, str, str, str, str, float, int, int]] = []
marks: dict[str, float] = {}
errors: dict[str, str] = {}


@events.test_start.add_listener
def _seed(**_: Any) -> None:
    active = PLAN.active
    started = time.time()
    try:
        seed.current = seed.seed(
            PLAN.host,
            RUN_ID,
            rag="rag" in active,
            telemetry="operators" in active or "mesh" in active,
        )
    except (seed.SeedError, requests.RequestException) as error:
        # The users fail on their first task; run.py reports this first.
        errors["seed"] = str(error)
        logger.error("seeding failed: %s", error)
        return
    marks["seeded_s"] = time.time() - started
    marks["test_start"] = time.time()
    logger.info("seeded %s in %.1f s", seed.current, marks["seeded_s"])


@events.spawning_complete.add_listener
def _spawned(user_count: int, **_: Any) -> None:
    marks["spawning_complete"] = time.time()
    marks["users"] = user_count


@events.request.add_listener
def _record(
    name: str,
    response_time: float,
    exception: BaseException | None,
    context: dict[str, Any] | None = None,
    response: Any = None,
    **_: Any,
) -> None:
    if name.endswith(RATE_LIMITED):
        name, outcome = name.removesuffix(RATE_LIMITED), "rate_limited"
    else:
        outcome = "ok" if exception is None else "error"
    context = context or {}
    records.append(
        (
            time.time(),
            context.get("caller_class", ""),
            context.get("phase", ""),
            name,
            outcome,
            response_time,
            int(getattr(response, "status_code", 0) or 0),
            int(bool(_header(response, "Retry-After"))),
        )
    )


def _header(response: Any, name: str) -> str | None:
    headers = getattr(response, "headers", None)
    try:
        return headers.get(name) if headers else None
    except (AttributeError, TypeError):
        return None


@events.test_stopping.add_listener
def _stopping(**_: Any) -> None:
    marks["test_stopping"] = time.time()


@events.test_stop.add_listener
def _finish(**_: Any) -> None:
    marks["test_stop"] = time.time()
    if seed.current is not None:
        try:
            seed.clean(PLAN.host, seed.current)
        except Exception:
            logger.warning("could not delete %s", seed.current.collection, exc_info=True)
    if RESULTS is None:
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / "requests.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["time", "class", "phase", "name", "outcome", "ms", "status", "retry_after"]
        )
        writer.writerows(records)
    info = {
        "run_id": RUN_ID,
        "plan": json.loads(PLAN.to_json()),
        "marks": marks,
        "errors": errors,
        "seeded": vars(seed.current) if seed.current is not None else None,
    }
    (RESULTS / "run.json").write_text(json.dumps(info, indent=2))
