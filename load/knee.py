"""The knee: the highest offered load at which the SLOs hold, per caller class and for the mix.

For each target (a class alone, or ``mix``: every class in the profile's proportions)
the offered load is stepped up by adding users (each offers its class's rate), one
``load.run`` per step with the ``default`` SLOs, by ``--factor`` until a step breaches;
then ``--refine`` bisection steps between the last step that held and the first that
did not. The knee is the last offered load that held (and what it achieved). Rates per
user and mix weights come from the ``knee`` profile of load/profiles.toml.

    # on services of its own, on a fresh stack of its own (rate limits off: capacity,
    # not the quota, is measured), as make load-ci runs:
    deploy/local-stack/test-stack.sh run .venv/bin/python -m load.knee --own-system
    # or against a running system (make up; its rate limits apply):
    .venv/bin/python -m load.knee --host http://127.0.0.1:8000 --targets rag,mix

Writes ``load/results/<time>-knee/`` (a folder per step and ``knee.json``) and prints
a table. The load generator runs on the same machine as the system: on 2 cores, Locust's
own CPU is part of what limits the knee, and the report says so.
"""

# A command-line tool: its table is printed for the person who ran it.
# ruff: noqa: T201

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from load.ci import own_system, stack_ready
from load.plan import CLASSES, Plan, PlanError, resolve, split_users, with_users
from load.run import RESULTS_ROOT, RunError, execute, results_folder

TARGETS = (*CLASSES, "mix")
# The services' settings for a capacity measurement: no per-credential rate limit.
CAPACITY_SETTINGS = {"gateway": {"X0_GATEWAY_RATE_LIMITS__ENABLED": "false"}}


@dataclass
class Step:
    """One run of a target at one size."""

    users: int
    offered: float
    achieved: float
    passed: bool
    breaches: list[str]
    folder: str
    load_average: float  # the machine's 1-minute load average at the step's end


def plan_for(base: Plan, target: str, users: int) -> Plan:
    """``base`` with ``users`` users: all in one class, or split by the mix's weights."""
    if target == "mix":
        return with_users(base, split_users(users, {n: c.weight for n, c in base.classes.items()}))
    return with_users(base, {target: users})


def run_step(base: Plan, target: str, users: int, root: Path) -> Step:
    plan = plan_for(base, target, users)
    out = root / f"{target}-{users:04d}"
    out.mkdir(parents=True)
    execute(plan, "default", out, verbose=False)  # its status is summary.json's "passed"
    summary = json.loads((out / "summary.json").read_text())
    return Step(
        users=users,
        offered=plan.offered,
        achieved=summary["achieved_rps"],
        passed=summary["passed"],
        breaches=[f"{b['slo']} = {b['measured']}" for b in summary["breaches"]],
        folder=out.name,
        load_average=summary["machine"]["load_average"][0],
    )


def search(
    base: Plan, target: str, root: Path, *, start: int, factor: float, most: int, refine: int
) -> list[Step]:
    """Steps up from ``start`` users until a breach (or ``most`` users), then bisects."""
    steps: list[Step] = []
    users = start
    while users <= most:
        step = run_step(base, target, users, root)
        steps.append(step)
        print(_line(target, step), flush=True)
        if not step.passed:
            break
        users = max(users + 1, math.ceil(users * factor))
    held = [s.users for s in steps if s.passed]
    failed = [s.users for s in steps if not s.passed]
    low, high = (max(held) if held else 0), (min(failed) if failed else 0)
    for _ in range(refine):
        if not high or high - low <= 1:
            break
        middle = (low + high) // 2
        step = run_step(base, target, middle, root)
        steps.append(step)
        print(_line(target, step), flush=True)
        low, high = (middle, high) if step.passed else (low, middle)
    return steps


def _line(target: str, step: Step) -> str:
    verdict = "holds" if step.passed else "BREACH: " + "; ".join(step.breaches[:3])
    return (
        f"{target:<13} {step.users:>5} users  offered {step.offered:>7.1f} req/s  "
        f"achieved {step.achieved:>7.1f} req/s  load {step.load_average:4.1f}  {verdict}"
    )


def knee(steps: list[Step]) -> dict[str, Any]:
    """The highest offered load that held, and the lowest that did not."""
    held = [s for s in steps if s.passed]
    failed = [s for s in steps if not s.passed]
    best = max(held, key=lambda s: s.offered) if held else None
    first_breach = min(failed, key=lambda s: s.offered) if failed else None
    return {
        "knee_offered_rps": best.offered if best else None,
        "knee_achieved_rps": best.achieved if best else None,
        "knee_users": best.users if best else None,
        "first_breach_offered_rps": first_breach.offered if first_breach else None,
        "first_breach": first_breach.breaches if first_breach else None,
        "steps": [vars(s) for s in steps],
    }


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m load.knee", description=__doc__.split("\n\n", 1)[0]
    )
    parser.add_argument("--targets", default=",".join(TARGETS), help="classes and/or mix")
    parser.add_argument("--own-system", action="store_true", help="start services (no limits)")
    parser.add_argument("--host", help="a running gateway (default http://127.0.0.1:8000)")
    parser.add_argument("--profile", default="knee", help="rates and mix weights")
    parser.add_argument("--step-duration", default="30", help="run time of each step")
    parser.add_argument("--start", type=int, default=2, help="users of the first step")
    parser.add_argument("--factor", type=float, default=1.5, help="users x this per step")
    parser.add_argument("--max-users", type=int, default=400, help="stop stepping here")
    parser.add_argument("--refine", type=int, default=1, help="bisection steps after a breach")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if unknown := set(targets) - set(TARGETS):
        print(f"knee: unknown targets {sorted(unknown)}; have {', '.join(TARGETS)}")
        return 2
    if args.own_system and not stack_ready():
        return 2
    try:
        base = resolve(args.profile, duration=args.step_duration, host=args.host)
        root = results_folder(RESULTS_ROOT, "knee")
        results: dict[str, Any] = {}
        with ExitStack() as stack:
            if args.own_system:
                gateway = stack.enter_context(own_system(root, CAPACITY_SETTINGS))
                base = replace(base, host=gateway)
            for target in targets:
                steps = search(
                    base,
                    target,
                    root,
                    start=args.start,
                    factor=args.factor,
                    most=args.max_users,
                    refine=args.refine,
                )
                results[target] = knee(steps)
        note = (
            "own services, gateway rate limits off"
            if args.own_system
            else f"running system at {base.host}, its rate limits on"
        )
        report = {
            "system": note,
            "step_duration_s": base.duration_s,
            "rates_per_user": {n: c.rate for n, c in base.classes.items()},
            "mix_weights": {n: c.weight for n, c in base.classes.items()},
            "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()},
            "targets": results,
        }
        (root / "knee.json").write_text(json.dumps(report, indent=2))
    except (PlanError, RunError) as error:
        print(f"knee: error: {error}", file=sys.stderr)
        return 2
    print(f"\nknee ({note}; {base.duration_s:g} s per step; {root}):")
    for target, figures in results.items():
        offered = figures["knee_offered_rps"]
        breach = figures["first_breach_offered_rps"]
        print(
            f"  {target:<13} holds at {offered if offered is not None else '-':>7} req/s"
            f" offered; first breach at {breach if breach is not None else '-'} req/s"
            f" ({'; '.join(figures['first_breach'] or ['none within --max-users'])})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
