"""What a run offers: users and rate per caller class, duration, host (``Plan``).

A plan comes from a profile in ``load/profiles.toml``, then the ``X0_LOAD_*`` variables,
then explicit arguments (``python -m load.run --users 40``), each overriding the one
before. The runner hands the resolved plan to the Locust process as JSON in
``X0_LOAD_PLAN``, so the locustfile and the SLO check see the same numbers.

Variables: ``X0_LOAD_PROFILE``, ``X0_LOAD_USERS``, ``X0_LOAD_DURATION`` (seconds, or
``90s``/``2m``), ``X0_LOAD_MIX`` (``key_exchange=4,rag=0``: weights, 0 leaves a class
out), ``X0_LOAD_RATE`` (``rag=2``: requests/s per user), ``X0_LOAD_HOST``,
``X0_LOAD_RAG_INGEST_SHARE``.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

PROFILES_FILE = Path(__file__).with_name("profiles.toml")
DEFAULT_HOST = "http://127.0.0.1:8000"
PLAN_VARIABLE = "X0_LOAD_PLAN"
# Several gateway replicas (comma-separated base URLs; load.chaos sets it): the users
# are spread over them (load/users/base.py). Unset: every user calls the plan's host.
HOSTS_VARIABLE = "X0_LOAD_HOSTS"

# The caller classes (keys of profiles.toml's [<profile>.classes]) and their Locust users.
CLASSES: dict[str, str] = {
    "key_exchange": "KeyExchangeClient",
    "rag": "RagUser",
    "mesh": "MeshNode",
    "operators": "Operator",
}


class PlanError(ValueError):
    """A profile, variable or argument that does not describe a run."""


@dataclass(frozen=True)
class ClassLoad:
    """One caller class: how many users, each offering ``rate`` requests per second."""

    name: str
    weight: float
    rate: float
    users: int = 0

    @property
    def offered(self) -> float:
        """Requests per second the class offers (users x rate)."""
        return self.users * self.rate


@dataclass(frozen=True)
class Plan:
    """A resolved run: the profile it came from and every number it offers."""

    profile: str
    host: str
    duration_s: float
    spawn_rate: float
    rag_ingest_share: float
    request_timeout_s: float
    classes: dict[str, ClassLoad]

    @property
    def users(self) -> int:
        """All users of all classes."""
        return sum(c.users for c in self.classes.values())

    @property
    def offered(self) -> float:
        """Requests per second offered by all classes."""
        return sum(c.offered for c in self.classes.values())

    @property
    def active(self) -> dict[str, ClassLoad]:
        """The classes that have users."""
        return {name: c for name, c in self.classes.items() if c.users > 0}

    def to_json(self) -> str:
        """The plan as JSON (for ``X0_LOAD_PLAN`` and the run's summary)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """The plan ``to_json`` wrote."""
        data = json.loads(text)
        data["classes"] = {k: ClassLoad(**v) for k, v in data["classes"].items()}
        return cls(**data)


def parse_seconds(text: str | float) -> float:
    """``90``, ``90s``, ``2m`` or ``1h`` as seconds."""
    if isinstance(text, int | float):
        return float(text)
    value = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if value and value[-1] in units:
            return float(value[:-1]) * units[value[-1]]
        return float(value)
    except ValueError as error:
        msg = f"not a duration: {text!r} (use 90, 90s, 2m)"
        raise PlanError(msg) from error


def parse_pairs(text: str, what: str) -> dict[str, float]:
    """``a=1,b=2`` as ``{"a": 1.0, "b": 2.0}``; names must be caller classes."""
    pairs: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in CLASSES:
            msg = f"{what}: {item!r} is not <class>=<number>; classes: {', '.join(CLASSES)}"
            raise PlanError(msg)
        try:
            pairs[name] = float(value)
        except ValueError as error:
            msg = f"{what}: {value!r} is not a number"
            raise PlanError(msg) from error
    return pairs


def split_users(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """``total`` users over the classes by weight (largest remainder), at least one per
    weighted class when there are enough users."""
    positive = {name: w for name, w in weights.items() if w > 0}
    if not positive or total <= 0:
        return dict.fromkeys(weights, 0)
    whole = sum(positive.values())
    exact = {name: total * w / whole for name, w in positive.items()}
    counts = {name: int(share) for name, share in exact.items()}
    if total >= len(positive):
        for name in positive:
            counts[name] = max(counts[name], 1)
    by_remainder = sorted(positive, key=lambda n: exact[n] - int(exact[n]), reverse=True)
    while sum(counts.values()) < total:
        for name in by_remainder:
            if sum(counts.values()) >= total:
                break
            counts[name] += 1
    while sum(counts.values()) > total:
        # Take back from the most over-served class that keeps at least one user.
        name = max((n for n in counts if counts[n] > 1), key=lambda n: counts[n] - exact[n])
        counts[name] -= 1
    return {name: counts.get(name, 0) for name in weights}


def load_profile(name: str) -> dict[str, Any]:
    """The table of one profile in profiles.toml."""
    profiles = tomllib.loads(PROFILES_FILE.read_text())
    if name not in profiles:
        msg = f"no profile {name!r} in {PROFILES_FILE} (have: {', '.join(profiles)})"
        raise PlanError(msg)
    return dict(profiles[name])


def resolve(
    profile: str | None = None,
    *,
    users: int | None = None,
    duration: str | float | None = None,
    mix: str | None = None,
    rates: str | None = None,
    host: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Plan:
    """The plan for ``profile`` with the environment's and then the arguments' overrides."""
    name = profile or environ.get("X0_LOAD_PROFILE") or "default"
    table = load_profile(name)
    weights = {c: float(table["classes"].get(c, {}).get("weight", 0)) for c in CLASSES}
    per_user = {c: float(table["classes"].get(c, {}).get("rate", 1.0)) for c in CLASSES}
    for text in (environ.get("X0_LOAD_MIX"), mix):
        weights.update(parse_pairs(text or "", "mix"))
    for text in (environ.get("X0_LOAD_RATE"), rates):
        per_user.update(parse_pairs(text or "", "rate"))
    total = users if users is not None else int(environ.get("X0_LOAD_USERS") or table["users"])
    counts = split_users(total, weights)
    seconds = parse_seconds(duration or environ.get("X0_LOAD_DURATION") or table["duration_s"])
    ingest_share = float(environ.get("X0_LOAD_RAG_INGEST_SHARE") or table["rag_ingest_share"])
    plan = Plan(
        profile=name,
        host=(host or environ.get("X0_LOAD_HOST") or DEFAULT_HOST).rstrip("/"),
        duration_s=seconds,
        spawn_rate=float(table["spawn_rate"]),
        rag_ingest_share=ingest_share,
        request_timeout_s=float(table["request_timeout_s"]),
        classes={
            c: ClassLoad(name=c, weight=weights[c], rate=per_user[c], users=counts[c])
            for c in CLASSES
        },
    )
    if not plan.active:
        msg = "the plan has no users: raise --users or give a class a weight in --mix"
        raise PlanError(msg)
    if not 0 <= plan.rag_ingest_share <= 1:
        msg = f"rag_ingest_share must be within 0..1, not {plan.rag_ingest_share}"
        raise PlanError(msg)
    return plan


def with_users(plan: Plan, counts: Mapping[str, int]) -> Plan:
    """The same plan with other user counts (the knee search steps them)."""
    classes = {name: replace(c, users=int(counts.get(name, 0))) for name, c in plan.classes.items()}
    return replace(plan, classes=classes)


def current(environ: Mapping[str, str] = os.environ) -> Plan:
    """The plan of this Locust process: the runner's, else resolved from the environment."""
    text = environ.get(PLAN_VARIABLE)
    return Plan.from_json(text) if text else resolve(environ=environ)
