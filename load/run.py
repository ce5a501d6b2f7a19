"""One load run against a running gateway: Locust headless, then SLOs, charts, summary.

    python -m load.run [--profile default] [--duration 60] [--users 20]
                       [--mix key_exchange=4,rag=0] [--rate rag=2] [--host URL]

(``make load DURATION=60 USERS=20``). Exit status: 0 when every SLO holds, 1 on a
breach, 2 when the run itself could not be made (no gateway, Locust failed).

Each run writes ``load/results/<time>-<profile>/`` (``load/results/latest`` points at
the newest): Locust's ``report.html`` and ``locust_*.csv``, ``requests.csv`` and
``run.json`` from the locustfile, ``classes.png``, ``service.png`` when a Prometheus
answers at ``X0_PROMETHEUS_URL`` (default http://127.0.0.1:9090), ``locust.log``, and
``summary.json`` with the plan, every figure and every SLO check.
"""

# A command-line tool: its report is printed for the person who ran it.
# ruff: noqa: T201

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from load import auth, charts, prometheus, slo, stats
from load.plan import CLASSES, PLAN_VARIABLE, Plan, PlanError, resolve

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_ROOT = REPO_ROOT / "load" / "results"
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
# Locust's own time on top of the run: seeding, spawning, stopping, writing reports.
LOCUST_GRACE_S = 180


class RunError(RuntimeError):
    """The run could not be made (as opposed to an SLO breach)."""


def preflight(host: str) -> None:
    """Fail early, and say why, when the gateway is not ready or refuses the credential."""
    try:
        with urllib.request.urlopen(f"{host}/health/ready", timeout=5):  # noqa: S310
            pass
    except (urllib.error.URLError, OSError) as error:
        msg = f"no ready gateway at {host}/health/ready ({error}): start the system (make up)"
        raise RunError(msg) from error
    probe = urllib.request.Request(f"{host}/v1/crypto/algorithms", headers=auth.headers())  # noqa: S310
    try:
        with urllib.request.urlopen(probe, timeout=10):  # noqa: S310
            pass
    except urllib.error.HTTPError as error:
        if error.code in {401, 403}:
            known = "the key sent" if auth.api_key() else "no key (none in X0_API_KEY"
            where = "" if auth.api_key() else f" nor in {auth.key_file()})"
            msg = f"the gateway answers {error.code} to {known}{where}: set X0_API_KEY"
            raise RunError(msg) from error
    except (urllib.error.URLError, OSError) as error:
        msg = f"the gateway at {host} did not answer a probe: {error}"
        raise RunError(msg) from error


def results_folder(root: Path, label: str) -> Path:
    folder = root / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{label}"
    folder.mkdir(parents=True, exist_ok=False)
    latest = root / "latest"
    latest.unlink(missing_ok=True)
    latest.symlink_to(folder.name)
    return folder


def locust_command(plan: Plan, out: Path) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of Locust headless with the plan's users, its
    files going to ``out`` (``load.chaos`` starts it so too, and stops it with SIGTERM)."""
    users = [CLASSES[name] for name in plan.active]
    command = [
        sys.executable, "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--headless", "--only-summary", "--reset-stats",
        "--users", str(plan.users),
        "--spawn-rate", f"{plan.spawn_rate:g}",
        "--run-time", f"{plan.duration_s:g}s",
        # Users finish the request in hand (and delete their keys) before stopping.
        "--stop-timeout", "10",
        "--host", plan.host,
        "--csv", str(out / "locust"), "--csv-full-history",
        "--html", str(out / "report.html"),
        "--loglevel", "INFO", "--logfile", str(out / "locust.log"),
        *users,
    ]  # fmt: skip
    environment = {
        **os.environ,
        PLAN_VARIABLE: plan.to_json(),
        "X0_LOAD_RESULTS": str(out),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    return command, environment


def run_locust(plan: Plan, out: Path) -> None:
    """Locust headless with the plan's users; its files go to ``out``."""
    command, environment = locust_command(plan, out)
    with (out / "locust.out").open("w") as output:
        try:
            # Locust exits 1 when any request failed; the SLOs decide here, not that.
            subprocess.run(  # noqa: S603 - our own command line
                command,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=plan.duration_s + LOCUST_GRACE_S,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            msg = f"Locust did not finish within {plan.duration_s + LOCUST_GRACE_S:g} s"
            raise RunError(msg) from error
    if not (out / "locust_stats.csv").is_file():
        tail = (out / "locust.out").read_text(errors="replace")[-2000:]
        msg = f"Locust wrote no statistics; its output ends:\n{tail}"
        raise RunError(msg)


def analyse(plan: Plan, slo_profile: str, out: Path) -> dict[str, Any]:
    """The SLO checks, charts and summary of a finished run in ``out``."""
    run = stats.read_run(out / "run.json")
    if run.get("errors", {}).get("seed"):
        msg = f"seeding failed: {run['errors']['seed']}"
        raise RunError(msg)
    window = stats.steady_window(run)
    if window is None:
        msg = "the run has no steady window (did every user spawn?); see locust.log"
        raise RunError(msg)
    operations = stats.read_stats(out / "locust_stats.csv")
    records = stats.read_records(out / "requests.csv")
    offered = {name: c.offered for name, c in plan.active.items()}
    classes = stats.class_throughput(records, window, offered)
    table = slo.load_table(slo_profile)
    checks = slo.evaluate(table, operations, classes)
    start = run["marks"].get("test_start", window[0])
    files = {"report": "report.html", "stats": "locust_stats.csv", "requests": "requests.csv"}
    files["classes_chart"] = charts.class_charts(
        records, offered, start=start, steady=window[0], end=window[1], out=out
    ).name
    notes = []
    base = prometheus.url()
    if prometheus.answers(base):
        path, empty = charts.service_chart(base, start=start, end=window[1], out=out)
        files["service_chart"] = path.name
        notes += empty
    else:
        notes.append(f"no Prometheus answers at {base}: service.png skipped")
    summary = {
        "profile": plan.profile,
        "slo_profile": slo_profile,
        "passed": not slo.breaches(checks),
        "host": plan.host,
        "window": {"start": window[0], "end": window[1], "seconds": window[1] - window[0]},
        "plan": json.loads(plan.to_json()),
        "offered_rps": plan.offered,
        "achieved_rps": sum(c.achieved for c in classes.values()),
        "classes": {name: asdict(c) for name, c in classes.items()},
        "operations": {name: asdict(o) for name, o in operations.items()},
        "checks": [c.as_dict() for c in checks],
        "breaches": [c.as_dict() for c in slo.breaches(checks)],
        "seeded": run.get("seeded"),
        "notes": notes,
        "files": files,
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def report(summary: dict[str, Any], out: Path) -> str:
    """The text report of a run."""
    lines = [
        f"load run ({summary['profile']} load, {summary['slo_profile']} SLOs) against "
        f"{summary['host']}: {summary['window']['seconds']:.0f} s steady window",
        f"offered {summary['offered_rps']:.1f} req/s, achieved {summary['achieved_rps']:.1f} "
        "req/s (successful)",
        "",
        f"{'name':<32} {'requests':>8} {'fail':>5} {'429':>4} {'p50':>7} {'p95':>7} {'p99':>7}",
    ]
    for name, o in summary["operations"].items():
        lines.append(
            f"{name:<32} {o['requests']:>8} {o['failures']:>5} {o['rate_limited']:>4} "
            f"{o['p50']:>7g} {o['p95']:>7g} {o['p99']:>7g}"
        )
    lines += ["", "SLO checks:"]
    lines += ["  " + slo.Check(**c).line() for c in summary["checks"]]
    lines += [f"note: {n}" for n in summary["notes"]]
    breaches = summary["breaches"]
    verdict = (
        "every SLO holds"
        if summary["passed"]
        else f"{len(breaches)} SLO(s) breached: "
        + "; ".join(f"{b['slo']} = {b['measured']} (SLO {b['target']})" for b in breaches)
    )
    lines += ["", f"results: {out}", verdict]
    return "\n".join(lines)


def execute(
    plan: Plan, slo_profile: str, out: Path | None = None, *, verbose: bool = True
) -> tuple[int, Path]:
    """Run, check, report; (exit status, results folder). ``out`` defaults to a new
    folder under load/results; without ``verbose`` only breaches are printed."""
    preflight(plan.host)
    out = out or results_folder(RESULTS_ROOT, plan.profile)
    started = time.monotonic()
    run_locust(plan, out)
    summary = analyse(plan, slo_profile, out)
    if verbose:
        print(report(summary, out))
        print(f"(the run took {time.monotonic() - started:.0f} s in all)")
    return (0 if summary["passed"] else 1), out


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m load.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--profile", help="a table of load/profiles.toml (default: default)")
    parser.add_argument("--slo", help="a table of load/slo.toml (default: the profile's)")
    parser.add_argument("--users", type=int, help="users over all classes, split by weight")
    parser.add_argument("--duration", help="run time: 60, 90s, 2m")
    parser.add_argument("--mix", help="class weights, e.g. key_exchange=4,rag=0")
    parser.add_argument("--rate", help="requests/s per user, e.g. rag=2")
    parser.add_argument("--host", help="the gateway (default http://127.0.0.1:8000)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    try:
        plan = resolve(
            args.profile,
            users=args.users,
            duration=args.duration,
            mix=args.mix,
            rates=args.rate,
            host=args.host,
        )
        code, _ = execute(plan, args.slo or plan.profile)
    except (PlanError, RunError, KeyError) as error:
        print(f"load: error: {error}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
