"""Chaos under load (issue 15): faults one at a time while the Locust mix runs, then a
check that nothing acknowledged was lost or applied twice.

    deploy/local-stack/test-stack.sh run python -m load.chaos [--faults kill-crypto,...]
    (make chaos: every fault; make chaos-ci: kill-crypto only)

Inside ``test-stack.sh run`` (a fresh Kafka, PostgreSQL and Redis), as ``load.ci``:

1. starts its own services with the executors of ``x0_common.testing.processes``: the
   crypto, rag and telemetry workers and two gateway replicas (``chaos-a``, ``chaos-b``)
   on two ports;
2. runs Locust with the ``chaos`` profile (load/profiles.toml), its users spread over
   both gateways (``X0_LOAD_HOSTS``: a user keeps the replica it was given, as a
   connection behind a Service does);
3. runs a *ledger writer* beside it (:class:`Ledger`): three threads that make
   mutations through either gateway, each with an ``Idempotency-Key`` — managed keys
   created then rotated once, documents upserted (``wait=false``: acknowledged once in
   Kafka), telemetry metrics events with unique timestamps — and read through the other
   services (key read, keyword search, node read) as probes. Every call is recorded
   (time, status, whether ``Retry-After`` came, latency); every acknowledged mutation
   goes into the ledger;
4. applies each fault of :data:`FAULTS` in turn: inject, recover (restart what was
   stopped), wait until the probes answer clean for ``CLEAN_S`` seconds, settle;
5. stops Locust (SIGTERM: its reports are written) and the writer, then checks the
   ledger through the public API (:func:`verify`): every acknowledged key exists with
   exactly the versions it should have (created: 1; rotated once: 1 and 2, no more),
   every acknowledged document is readable, found by a keyword search of its own token
   with no duplicate chunk, and the collection counts each document once; the history
   of the writer's node counts every accepted metrics event exactly once;
6. prints a table per fault (:func:`table`): error window (first to last failed call
   from the fault's start), the statuses callers saw, calls that hung past the
   deadline, the time to recover to SLO, and acknowledged writes lost or duplicated.

Results go to ``load/results/<time>-chaos/``: ``chaos.json`` (every figure and finding),
``chaos.md`` (the table), ``calls.csv`` (the writer's calls), Locust's files and the
services' logs. Exit status: 0 when every fault recovered with no acknowledged loss, no
duplicate effect, no 500 and no hang; 1 otherwise; 2 when the run could not be made.

A fault is one :class:`Fault` entry (inject, recover, and what it needs); the broker
kill is listed and runs once the stack has three brokers (``X0_KAFKA__BOOTSTRAP_SERVERS``
naming three).
"""

# A command-line tool: it prints its progress and table for the person who ran it.
# ruff: noqa: T201

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import string
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import psutil
import requests
from mirakuru import HTTPExecutor

from load import auth, ci
from load.corpus import documents
from load.plan import HOSTS_VARIABLE, PlanError, resolve
from load.run import RESULTS_ROOT, RunError, locust_command, preflight, results_folder
from load.seed import SEED_NODES
from x0_common.testing.processes import READY_PATH, free_port, http_executor, python_command

REPO_ROOT = Path(__file__).resolve().parents[1]
# The stack script whose `up` restarts what a fault stopped: the instance's variables
# (X0_STACK_DIR, ports) come from test-stack.sh run. X0_CHAOS_STACK_SCRIPT names another
# copy (one that is not being edited while a run goes on).
STACK = Path(
    os.environ.get("X0_CHAOS_STACK_SCRIPT") or REPO_ROOT / "deploy" / "local-stack" / "stack.sh"
)
START_TIMEOUT_S = 180.0
# The gateway's request deadline is 10 s (X0_GATEWAY_REQUEST_TIMEOUT_SECONDS): an answer
# later than 15 s (the deadline and 5 s for a loaded 2-core machine's scheduling) is a
# hang. The slowest answer of each fault is in chaos.json (slowest_ms).
HANG_S = 15.0
CLIENT_TIMEOUT_S = 30.0
WARM_UP_S = 20.0
CLEAN_S = 10.0  # the probes answer clean this long: recovered
SETTLE_S = 15.0  # after the probes are clean: room for the SLO windows
RECOVERY_TIMEOUT_S = 240.0
VERIFY_TIMEOUT_S = 180.0
# Recovered to SLO: a window of this many seconds, from the fault on, in which the
# writer saw no error and Locust's error rate and p95 are within the ci SLOs.
SLO_WINDOW_S = 10.0
SLO_MAX_ERROR_RATE = 0.02
SLO_P95_MS = 1500.0
SLO_P95_SEARCH_MS = 2500.0
WRITER_PAUSE_S = 0.4
SERVICES = ("crypto", "rag", "telemetry", "gateway-a", "gateway-b")
GATEWAYS = ("gateway-a", "gateway-b")


# -- the system ----------------------------------------------------------------------


@dataclass
class Spec:
    """How one service is started (again)."""

    module: str
    port: int
    environment: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class System:
    """The services of the run, each restartable after a fault."""

    def __init__(self, stack_dir: Path, logs: Path) -> None:
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        self.specs: dict[str, Spec] = {}
        for name in SERVICES:
            module = "x0_gateway" if name.startswith("gateway") else f"x0_{name}"
            port = free_port()
            variable = "X0_GATEWAY_PORT" if module == "x0_gateway" else f"X0_{name.upper()}_PORT"
            environment = {variable: str(port)}
            if module == "x0_gateway":
                environment["X0_GATEWAY_METRICS_PORT"] = str(free_port())
                environment["X0_GATEWAY_REPLICA_ID"] = f"chaos-{name[-1]}"
            if name == "rag":
                environment["X0_RAG_SNAPSHOT_DIR"] = str(stack_dir / "chaos-rag-snapshots")
            self.specs[name] = Spec(module, port, environment)
        self.executors: dict[str, HTTPExecutor] = {}
        self.ledger: Ledger | None = None  # set once the writer runs
        self._outputs: list[IO[str]] = []

    def gateways(self) -> list[str]:
        return [self.specs[name].url for name in GATEWAYS]

    def _executor(self, name: str) -> HTTPExecutor:
        spec = self.specs[name]
        output = (self.logs / f"{name}.log").open("a")
        self._outputs.append(output)
        return http_executor(
            python_command(spec.module),
            ready_url=f"{spec.url}{READY_PATH}",
            environment=spec.environment,
            output=output,
            timeout=START_TIMEOUT_S,
        )

    def start(self, *names: str) -> None:
        """Start ``names`` (every service when none) at once; wait until all are ready."""
        names = names or SERVICES
        errors: dict[str, Exception] = {}

        def one(name: str) -> None:
            executor = self._executor(name)
            self.executors[name] = executor
            try:
                executor.start()
            except Exception as error:  # noqa: BLE001 - reported with the name
                errors[name] = error

        threads = [threading.Thread(target=one, args=(n,)) for n in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            detail = "; ".join(f"{n}: {e}" for n, e in errors.items())
            msg = f"services did not start ({detail}); logs in {self.logs}"
            raise RunError(msg)

    def signal(self, name: str, number: signal.Signals, wait_s: float = 90.0) -> None:
        """Send ``number`` to the service's process group; wait until its process exits
        (SIGKILL after ``wait_s``)."""
        process = self.executors[name].process
        assert process is not None
        with suppress(ProcessLookupError):
            os.killpg(process.pid, number)
        try:
            process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def restart(self, name: str) -> None:
        """Start the stopped service again (same port and settings), until ready."""
        self.start(name)

    def stop(self) -> None:
        for executor in self.executors.values():
            with suppress(Exception):
                executor.stop()
        for output in self._outputs:
            output.close()


def listener(port: int) -> psutil.Process:
    """The process listening on TCP ``port`` (the parent, when forked children share it)."""
    pids = {
        c.pid
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
    }
    if not pids:
        msg = f"nothing listens on port {port}"
        raise RunError(msg)
    for pid in pids:
        process = psutil.Process(pid)
        if process.ppid() not in pids:
            return process
    return psutil.Process(min(pids))


def stop_listener(port: int, number: signal.Signals, wait_s: float = 60.0) -> None:
    process = listener(port)
    process.send_signal(number)
    try:
        process.wait(timeout=wait_s)
    except psutil.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def stack_up() -> None:
    """``stack.sh up`` on this run's instance (its variables are in the environment):
    starts what is stopped, leaves what runs."""
    done = subprocess.run(  # noqa: S603 - our own script
        [str(STACK), "up"], capture_output=True, text=True, check=False, timeout=300
    )
    if done.returncode != 0:
        msg = f"stack.sh up failed: {done.stdout[-1000:]}{done.stderr[-1000:]}"
        raise RunError(msg)


def _port(variable: str) -> int:
    value = os.environ.get(variable)
    if not value:
        msg = f"{variable} is not set: run inside deploy/local-stack/test-stack.sh run"
        raise RunError(msg)
    return int(value)


def brokers() -> list[str]:
    return [b for b in os.environ.get("X0_KAFKA__BOOTSTRAP_SERVERS", "").split(",") if b]


# -- the faults ----------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One fault: ``inject`` breaks something, ``recover`` brings it back (as an
    orchestrator would: restart the process); ``needs`` says why it cannot run here, or
    None."""

    name: str
    description: str
    inject: Callable[[System], None]
    recover: Callable[[System], None]
    needs: Callable[[], str | None] = lambda: None


# The signal goes right after the writer's next acknowledged write of this kind: a
# crypto worker killed then has just replied to a rotation whose offset is not committed
# yet (the committer runs every commit_interval_ms), so the rotation is redelivered.
RIGHT_AFTER = {"crypto": "key_rotate"}


def _service_fault(service: str, number: signal.Signals) -> Fault:
    verb = "SIGKILL" if number == signal.SIGKILL else "SIGTERM"
    prefix = "kill" if number == signal.SIGKILL else "term"
    after = RIGHT_AFTER.get(service)

    def inject(system: System) -> None:
        if after is not None and system.ledger is not None:
            system.ledger.wait_for_ack(after, timeout=30.0)
        system.signal(service, number)

    return Fault(
        name=f"{prefix}-{service}",
        description=f"{verb} of {service}"
        + (f" right after an acknowledged {after}" if after else "")
        + ", then a restart",
        inject=inject,
        recover=lambda system: system.restart(service),
    )


def _restart_postgres(_: System) -> None:
    # SIGINT: PostgreSQL's fast shutdown (what pg_ctl stop -m fast sends).
    stop_listener(_port("X0_STACK_PG_PORT"), signal.SIGINT)


def _restart_redis(_: System) -> None:
    stop_listener(_port("X0_STACK_REDIS_PORT"), signal.SIGTERM)


def _three_brokers() -> str | None:
    if len(brokers()) >= 3:
        return None
    return (
        "needs the 3-broker stack (KAFKA_BROKERS=3, replication 3, min.insync.replicas=2); "
        f"this one has {len(brokers())}"
    )


def _kill_broker(_: System) -> None:
    # The last broker of the list: not the one clients bootstrap from first. Which
    # broker is the active controller or a partition leader is not looked up yet.
    port = int(brokers()[-1].rsplit(":", 1)[1])
    stop_listener(port, signal.SIGKILL)


FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in [
        *(_service_fault(s, signal.SIGKILL) for s in ("crypto", "rag", "telemetry", "gateway-b")),
        *(_service_fault(s, signal.SIGTERM) for s in SERVICES if s != "gateway-a"),
        Fault(
            "restart-postgres",
            "PostgreSQL fast shutdown, then stack.sh up starts it again",
            _restart_postgres,
            lambda _: stack_up(),
        ),
        Fault(
            "restart-redis",
            "Redis stopped (SIGTERM; a cache: nothing kept), then stack.sh up",
            _restart_redis,
            lambda _: stack_up(),
        ),
        Fault(
            "kill-kafka-broker",
            "SIGKILL of one Kafka broker, then stack.sh up restarts it",
            _kill_broker,
            lambda _: stack_up(),
            _three_brokers,
        ),
    ]
}
CI_FAULTS = ("kill-crypto",)


# -- the ledger writer ---------------------------------------------------------------


@dataclass
class Call:
    """One call of the writer."""

    time: float  # when the answer (or the error) came
    thread: str
    operation: str
    gateway: str
    status: int  # 0: no answer (refused, reset, timed out)
    retry_after: bool
    ms: float
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Mutation:
    """An acknowledged (or unknown-outcome) mutation."""

    kind: str  # key_create, key_rotate, document, event
    subject: str
    outcome: str  # acked, unknown, refused
    time: float
    fault: str  # the fault under way when it was answered ("" before the first)
    detail: dict[str, Any] = field(default_factory=dict)


def _letters(number: int) -> str:
    out = ""
    while True:
        number, digit = divmod(number, 26)
        out = string.ascii_lowercase[digit] + out
        if number == 0:
            return out


def _outcome(response: requests.Response) -> tuple[str, Any]:
    """acked (2xx, with its JSON body), refused (a 4xx: nothing done), or unknown."""
    if 200 <= response.status_code < 300:
        try:
            return "acked", response.json()
        except ValueError:
            return "unknown", None
    if 400 <= response.status_code < 500 and response.status_code not in {408, 409, 429}:
        return "refused", None
    return "unknown", None


class Ledger:
    """The writer: three threads that mutate, probe and record."""

    def __init__(self, gateways: list[str], run_id: str) -> None:
        self.gateways = gateways
        self.run_id = run_id
        self.collection = f"chaos-{run_id}"
        self.node = f"chaos-{run_id}-node"
        self.mesh = f"chaos-{run_id}"
        # Locust's run id is the same (X0_LOAD_RUN_ID): its seeded mesh and nodes.
        self.seeded_mesh = f"load-{run_id}"
        self.seeded_nodes = [f"load-{run_id}-seed-{i}" for i in range(SEED_NODES)]
        self.token_base = "zq" + "".join(string.ascii_lowercase[int(c, 16)] for c in run_id)
        self.calls: list[Call] = []
        self.mutations: list[Mutation] = []
        self.fault = ""
        self.started = time.time()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._acked: dict[str, float] = {}  # kind -> when the last one was acknowledged

    # -- calls --

    def call(
        self,
        thread: str,
        operation: str,
        method: str,
        path: str,
        turn: int,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool = False,
    ) -> tuple[str, Any]:
        """One request, on gateway ``turn`` (the other when the first refuses the
        connection: nothing was sent). (outcome, JSON body): acked / refused / unknown."""
        headers = {**auth.headers()}
        if idempotent:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        for attempt in range(len(self.gateways)):
            gateway = self.gateways[(turn + attempt) % len(self.gateways)]
            call = Call(0.0, thread, operation, GATEWAYS[self.gateways.index(gateway)], 0, False, 0)
            started = time.monotonic()
            try:
                response = requests.request(
                    method,
                    gateway + path,
                    json=body,
                    params=params,
                    headers=headers,
                    timeout=CLIENT_TIMEOUT_S,
                )
            except requests.RequestException as error:
                refused = isinstance(error, requests.ConnectionError) and "refused" in str(error)
                call.error = "refused" if refused else type(error).__name__
                self._record(call, started)
                if refused:
                    continue  # not sent: the other replica takes it
                return "unknown", None
            call.status = response.status_code
            call.retry_after = bool(response.headers.get("Retry-After"))
            self._record(call, started)
            return _outcome(response)
        return "refused", None  # no replica took the connection: nothing was sent

    def _record(self, call: Call, started: float) -> None:
        call.ms = (time.monotonic() - started) * 1000
        call.time = time.time()
        with self._lock:
            self.calls.append(call)

    def mutation(self, kind: str, subject: str, outcome: str, **detail: Any) -> None:
        with self._lock:
            self.mutations.append(
                Mutation(kind, subject, outcome, time.time(), self.fault, dict(detail))
            )
            if outcome == "acked":
                self._acked[kind] = time.monotonic()

    def wait_for_ack(self, kind: str, timeout: float) -> None:
        """Until the next write of ``kind`` is acknowledged (or ``timeout`` passes)."""
        since = time.monotonic()
        while time.monotonic() - since < timeout and self._acked.get(kind, 0.0) <= since:
            time.sleep(0.002)

    # -- the threads --

    def setup(self) -> None:
        outcome, _ = self.call(
            "setup", "create_collection", "POST", "/v1/rag/collections", 0,
            body={"name": self.collection},
        )  # fmt: skip
        if outcome != "acked":
            msg = f"the writer could not create its collection {self.collection}"
            raise RunError(msg)

    def start(self) -> None:
        for target in (self._keys, self._documents, self._events):
            thread = threading.Thread(target=self._loop, args=(target,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CLIENT_TIMEOUT_S * 3)

    def _loop(self, step: Callable[[int], None]) -> None:
        number = 0
        while not self._stop.is_set():
            number += 1
            step(number)
            self._stop.wait(WRITER_PAUSE_S)

    def _keys(self, number: int) -> None:
        name = f"chaos-{self.run_id}-{number}"
        outcome, _ = self.call(
            "keys", "create_key", "POST", "/v1/crypto/keys", number,
            body={"name": name, "type": "X-Wing", "deletion_allowed": True}, idempotent=True,
        )  # fmt: skip
        self.mutation("key_create", name, outcome)
        if outcome != "acked":
            return
        if number % 2 == 0:  # every other key is rotated once
            outcome, answer = self.call(
                "keys", "rotate_key", "POST", f"/v1/crypto/keys/{name}/rotate", number + 1,
                idempotent=True,
            )  # fmt: skip
            version = answer.get("latest_version") if answer else None
            self.mutation("key_rotate", name, outcome, latest_version=version)
        self.call("keys", "read_key", "GET", f"/v1/crypto/keys/{name}", number)

    def token(self, number: int) -> str:
        """A word only this document holds; it ends in ``zq`` so that no stemmer rule
        (trailing e, s, ...) makes two of them one."""
        return f"{self.token_base}{_letters(number)}zq"

    def _documents(self, number: int) -> None:
        document = documents(1, seed=number)[0]
        identifier = f"chaos-{number}"
        document["id"] = identifier
        document["text"] = f"{document['text']} {self.token(number)}"
        outcome, answer = self.call(
            "documents", "upsert_documents", "POST",
            f"/v1/rag/collections/{self.collection}/documents", number,
            body={"documents": [document]}, idempotent=True,
        )  # fmt: skip
        version = answer.get("version") if answer else None
        self.mutation("document", identifier, outcome, token=self.token(number), version=version)
        self.call(
            "documents", "search", "POST", f"/v1/rag/collections/{self.collection}/search",
            number + 1, body={"query": self.token(max(1, number - 5)), "mode": "keyword", "k": 3},
        )  # fmt: skip

    def _events(self, number: int) -> None:
        stamp = datetime.now(UTC).isoformat()
        events = [
            {"kind": "heartbeat", "node_id": self.node, "mesh_id": self.mesh,
             "timestamp": stamp, "software_version": "chaos-1.0"},
            {"kind": "metrics", "node_id": self.node, "mesh_id": self.mesh, "timestamp": stamp,
             "cpu": 0.5, "memory": 0.5, "rtt_ms": 1.0, "packet_loss": 0.0,
             "throughput_bps": 1.0},
        ]  # fmt: skip
        # Locust's seeded nodes report too, as live nodes do: their latest state lives in
        # Redis, a cache, and comes back with their next heartbeat after a restart.
        events += [
            {"kind": "heartbeat", "node_id": node, "mesh_id": self.seeded_mesh,
             "timestamp": stamp, "software_version": "load-1.0"}
            for node in self.seeded_nodes
        ]  # fmt: skip
        outcome, _ = self.call(
            "events", "publish_events", "POST", "/v1/telemetry/events", number,
            body={"events": events}, idempotent=True,
        )  # fmt: skip
        self.mutation("event", stamp, outcome)
        self.call("events", "get_node", "GET", f"/v1/telemetry/nodes/{self.node}", number + 1)

    def clean_since(self, since: float) -> bool:
        """True when every call answered since ``since`` succeeded, and there were some of
        each thread (the probes reach every service)."""
        with self._lock:
            recent = [c for c in self.calls if c.time >= since and c.thread != "setup"]
        threads = {c.thread for c in recent}
        return {"keys", "documents", "events"} <= threads and all(c.ok for c in recent)


# -- verification --------------------------------------------------------------------


@dataclass
class Finding:
    """An acknowledged write lost, or applied more than once."""

    kind: str  # lost, duplicate
    what: str
    detail: str
    fault: str


def verify(ledger: Ledger, gateway: str) -> tuple[list[Finding], dict[str, int]]:
    """Check the ledger through the public API; (findings, counts checked)."""
    verifier = Verifier(ledger, gateway)
    verifier.keys()
    verifier.documents()
    verifier.events()
    verifier.counts["unknown_outcomes"] = sum(m.outcome == "unknown" for m in ledger.mutations)
    return verifier.findings, dict(verifier.counts)


class Verifier:
    """Reads every store back through the gateway and notes what differs from the ledger."""

    def __init__(self, ledger: Ledger, gateway: str) -> None:
        self.ledger = ledger
        self.gateway = gateway
        self.session = requests.Session()
        self.session.headers.update(auth.headers())
        self.findings: list[Finding] = []
        self.counts: Counter[str] = Counter()
        self.deadline = time.monotonic() + VERIFY_TIMEOUT_S

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(
            self.gateway + path, params=params or None, timeout=CLIENT_TIMEOUT_S
        )

    def of(self, kind: str) -> list[Mutation]:
        return [m for m in self.ledger.mutations if m.kind == kind]

    def note(self, kind: str, what: str, detail: str, fault: str) -> None:
        self.findings.append(Finding(kind, what, detail, fault))

    def keys(self) -> None:
        """Created -> version 1; rotated once (acked) -> exactly 1 and 2; a rotation of
        unknown outcome -> 1, or 1 and 2; never more."""
        rotations = {m.subject: m for m in self.of("key_rotate")}
        for created in self.of("key_create"):
            if created.outcome == "refused":
                continue
            response = self.get(f"/v1/crypto/keys/{created.subject}")
            if response.status_code == 404:
                if created.outcome == "acked":
                    self.note("lost", f"key {created.subject}", "404", created.fault)
                continue
            response.raise_for_status()
            versions = sorted(v["version"] for v in response.json()["versions"])
            rotated = rotations.get(created.subject)
            allowed = {"acked": [[1, 2]], "unknown": [[1], [1, 2]]}.get(
                rotated.outcome if rotated else "", [[1]]
            )
            self.counts["keys"] += created.outcome == "acked"
            self.counts["rotations"] += rotated is not None and rotated.outcome == "acked"
            if versions not in allowed:
                kind = "lost" if len(versions) < min(len(a) for a in allowed) else "duplicate"
                fault = rotated.fault if rotated is not None else created.fault
                detail = f"versions {versions}, expected {' or '.join(map(str, allowed))}"
                self.note(kind, f"key {created.subject}", detail, fault)

    def documents(self) -> None:
        """Each acked document readable (ingest is asynchronous: waited for), found by
        its token, no chunk twice; the collection counts each stored document once."""
        collection = f"/v1/rag/collections/{self.ledger.collection}"
        docs = self.of("document")
        pending = {m.subject: m for m in docs if m.outcome == "acked"}
        stored: dict[str, int] = {}
        while pending:
            for subject in list(pending):
                response = self.get(f"{collection}/documents/{subject}")
                if response.status_code == 200:
                    stored[subject] = len(response.json()["chunks"])
                    self.document(pending.pop(subject), response.json())
            if not pending or time.monotonic() > self.deadline:
                break
            time.sleep(2)
        for subject, mutation in pending.items():
            self.note("lost", f"document {subject}", "not readable", mutation.fault)
        for mutation in (m for m in docs if m.outcome == "unknown"):
            response = self.get(f"{collection}/documents/{mutation.subject}")
            if response.status_code == 200:
                stored[mutation.subject] = len(response.json()["chunks"])
        self.counts["documents"] = sum(m.outcome == "acked" for m in docs)
        info = self.get(collection)
        info.raise_for_status()
        held = info.json()
        if held["documents"] != len(stored) or held["chunks"] != sum(stored.values()):
            self.note(
                "duplicate" if held["documents"] > len(stored) else "lost",
                f"collection {self.ledger.collection}",
                f"holds {held['documents']} documents / {held['chunks']} chunks; "
                f"{len(stored)} / {sum(stored.values())} were written",
                "",
            )

    def document(self, mutation: Mutation, document: dict[str, Any]) -> None:
        what = f"document {mutation.subject}"
        chunks = document["chunks"]
        spans = [(c["start"], c["end"]) for c in chunks]
        if len({c["chunk_id"] for c in chunks}) != len(chunks) or len(set(spans)) != len(spans):
            self.note("duplicate", what, f"chunks {spans}", mutation.fault)
        response = self.session.post(
            f"{self.gateway}/v1/rag/collections/{self.ledger.collection}/search",
            json={"query": mutation.detail["token"], "mode": "keyword", "k": 10},
            timeout=CLIENT_TIMEOUT_S,
        )
        hits = response.json().get("hits", []) if response.status_code == 200 else []
        mine = [h for h in hits if h["document_id"] == mutation.subject]
        if not mine:
            detail = f"its token is not found (search {response.status_code})"
            self.note("lost", what, detail, mutation.fault)
        elif len({h["chunk_id"] for h in mine}) != len(mine):
            detail = f"search hits {[(h['document_id'], h['chunk_id']) for h in hits]}"
            self.note("duplicate", what, detail, mutation.fault)

    def events(self) -> None:
        """The writer's node's history counts each accepted metrics event once."""
        events = self.of("event")
        accepted = sum(m.outcome == "acked" for m in events)
        most = accepted + sum(m.outcome == "unknown" for m in events)
        self.counts["events"] = accepted
        start = datetime.fromtimestamp(self.ledger.started, UTC) - timedelta(minutes=2)
        samples = -1
        while not accepted <= samples <= most and time.monotonic() < self.deadline:
            end = datetime.now(UTC) + timedelta(minutes=2)
            response = self.get(
                f"/v1/telemetry/nodes/{self.ledger.node}/history",
                start=start.isoformat(), end=end.isoformat(), step_seconds=60,
            )  # fmt: skip
            if response.status_code == 200:
                samples = sum(p["samples"] for p in response.json()["points"])
            else:
                time.sleep(2)
        what = f"telemetry node {self.ledger.node}"
        if samples < accepted:
            faults = {m.fault for m in events if m.outcome == "acked" and m.fault}
            detail = f"history counts {samples} metrics events, {accepted} were accepted"
            self.note("lost", what, detail, ",".join(sorted(faults)))
        elif samples > most:
            detail = f"history counts {samples} metrics events, at most {most} were sent"
            self.note("duplicate", what, detail, "")


# -- figures per fault ---------------------------------------------------------------


@dataclass
class Outcome:
    """What one fault did, as callers saw it."""

    fault: str
    injected: float
    recovered: float | None  # the probes clean again (wall clock), None: never
    ended: float  # the next fault's start, or the run's end
    skipped: str = ""
    error_window: tuple[float, float] | None = None  # seconds from injection
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    without_retry_after: int = 0
    hangs: int = 0
    slowest_ms: float = 0.0
    server_errors: int = 0
    recovery_s: float | None = None  # to SLO
    lost: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class Seen:
    """One call as a caller saw it, from the writer or from Locust."""

    time: float  # answer time
    ms: float
    status: int
    retry_after: bool
    ok: bool
    name: str
    label: str  # the status, or what came instead of one


def seen_calls(ledger: Ledger, locust_csv: Path) -> list[Seen]:
    calls = [
        Seen(c.time, c.ms, c.status, c.retry_after, c.ok, c.operation,
             str(c.status) if c.status else f"no answer ({c.error})")
        for c in ledger.calls
    ]  # fmt: skip
    if locust_csv.is_file():
        with locust_csv.open(newline="") as f:
            for row in csv.DictReader(f):
                if row["outcome"] == "rate_limited":
                    continue
                status = row.get("status") or "0"
                calls.append(
                    Seen(float(row["time"]), float(row["ms"]), int(status),
                         row.get("retry_after") == "1", row["outcome"] == "ok", row["name"],
                         status if status != "0" else "no answer")
                )  # fmt: skip
    calls.sort(key=lambda c: c.time)
    return calls


def figures(outcome: Outcome, calls: list[Seen], findings: list[Finding]) -> None:
    """Fill ``outcome``'s figures from the calls answered between its start and end."""
    mine = [c for c in calls if outcome.injected <= c.time < outcome.ended]
    failed = [c for c in mine if not c.ok]
    if failed:
        outcome.error_window = (
            failed[0].time - failed[0].ms / 1000 - outcome.injected,
            failed[-1].time - outcome.injected,
        )
    outcome.errors = len(failed)
    outcome.statuses = dict(Counter(c.label for c in failed))
    outcome.without_retry_after = sum(c.status in {503, 504} and not c.retry_after for c in failed)
    outcome.hangs = sum(c.ms > HANG_S * 1000 for c in mine)
    outcome.slowest_ms = max((c.ms for c in mine), default=0.0)
    outcome.server_errors = sum(c.status >= 500 and c.status not in {503, 504} for c in failed)
    outcome.recovery_s = _recovery(outcome, mine)
    outcome.lost = sum(f.kind == "lost" and outcome.fault in f.fault.split(",") for f in findings)
    outcome.duplicates = sum(
        f.kind == "duplicate" and outcome.fault in f.fault.split(",") for f in findings
    )


def _recovery(outcome: Outcome, calls: list[Seen]) -> float | None:
    """Seconds from injection until the SLO holds and keeps holding: the end of the first
    SLO_WINDOW_S window (stepping by a second, calls by the time they were answered)
    after which every window up to the next fault meets the ci SLOs (error rate, p95).
    None when the last window does not; SLO_WINDOW_S when none fails."""
    step = 1.0
    starts = []
    t = outcome.injected
    while t + SLO_WINDOW_S <= outcome.ended:
        starts.append(t)
        t += step
    recovered = outcome.injected
    for start in starts:
        window = [c for c in calls if start <= c.time < start + SLO_WINDOW_S]
        if window and not _meets_slo(window):
            recovered = start + step
    if not starts or recovered > starts[-1]:
        return None
    return recovered + SLO_WINDOW_S - outcome.injected


def _meets_slo(window: list[Seen]) -> bool:
    errors = sum(not c.ok for c in window)
    if errors / len(window) > SLO_MAX_ERROR_RATE:
        return False
    for search in (True, False):
        latencies = sorted(c.ms for c in window if c.name.startswith("search") == search)
        limit = SLO_P95_SEARCH_MS if search else SLO_P95_MS
        if latencies and latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] > limit:
            return False
    return True


def table(outcomes: list[Outcome]) -> str:
    """The per-fault table, as Markdown."""
    lines = [
        "| fault | error window (s from fault) | failed calls | statuses seen | "
        "503/504 without Retry-After | hangs > 15 s | 500s | recovery to SLO (s) | "
        "lost | duplicated |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        if o.skipped:
            lines.append(f"| {o.fault} | not run: {o.skipped} | | | | | | | | |")
            continue
        window = f"{o.error_window[0]:.1f} to {o.error_window[1]:.1f}" if o.error_window else "none"
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(o.statuses.items())) or "-"
        recovery = f"{o.recovery_s:.0f}" if o.recovery_s is not None else "not recovered"
        lines.append(
            f"| {o.fault} | {window} | {o.errors} | {statuses} | {o.without_retry_after} | "
            f"{o.hangs} | {o.server_errors} | {recovery} | {o.lost} | {o.duplicates} |"
        )
    return "\n".join(lines)


# -- the run -------------------------------------------------------------------------


@contextmanager
def locust(
    plan_hosts: list[str],
    users: int | None,
    run_id: str,
    out: Path,
    *,
    profile: str = "chaos",
    duration: str | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Locust with ``profile`` over ``plan_hosts``, from when every user has started
    until SIGTERM at the end (or the profile's duration)."""
    plan = replace(resolve(profile, users=users, duration=duration), host=plan_hosts[0])
    command, environment = locust_command(plan, out)
    environment[HOSTS_VARIABLE] = ",".join(plan_hosts)
    environment["X0_LOAD_RUN_ID"] = run_id
    with (out / "locust.out").open("w") as output:
        process = subprocess.Popen(  # noqa: S603 - our own command line
            command, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            _wait_spawned(process, out / "locust.log")
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _apply(
    faults: list[Fault],
    system: System,
    ledger: Ledger,
    process: subprocess.Popen[bytes],
    out: Path,
) -> list[Outcome]:
    """Each fault in turn: inject, recover, wait until the writer's calls are clean."""
    outcomes: list[Outcome] = []
    for fault in faults:
        if (reason := fault.needs()) is not None:
            print(f"chaos: {fault.name}: not run: {reason}")
            now = time.time()
            outcomes.append(Outcome(fault.name, now, None, now, skipped=reason))
            continue
        if process.poll() is not None:
            msg = f"Locust exited early ({process.returncode}); see {out / 'locust.out'}"
            raise RunError(msg)
        ledger.fault = fault.name
        injected = time.time()
        print(f"chaos: {fault.name}: {fault.description}")
        fault.inject(system)
        fault.recover(system)
        recovered = _wait_clean(ledger)
        took = f"{recovered - injected:.0f} s" if recovered else "NOT recovered"
        print(f"chaos: {fault.name}: back in {took}")
        outcomes.append(Outcome(fault.name, injected, recovered, 0.0))
        time.sleep(SETTLE_S)
        if recovered is None:
            break
    return outcomes


def _wait_spawned(process: subprocess.Popen[bytes], log: Path) -> None:
    """Until Locust has seeded and started every user (its log says so)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            msg = f"Locust exited ({process.returncode}) before its users started; see {log}"
            raise RunError(msg)
        if log.is_file() and "All users spawned" in log.read_text(errors="replace"):
            return
        time.sleep(1)
    msg = f"Locust did not start its users within {START_TIMEOUT_S:.0f} s; see {log}"
    raise RunError(msg)


def run(fault_names: list[str], users: int | None, out: Path) -> int:
    stack_dir = Path(os.environ.get("X0_STACK_DIR") or REPO_ROOT / ".stack" / "test")
    faults = [FAULTS[name] for name in fault_names]
    system = System(stack_dir, out / "services")
    with ExitStack() as stack:
        stack.callback(system.stop)
        started = time.monotonic()
        system.start()
        print(f"chaos: {', '.join(SERVICES)} ready in {time.monotonic() - started:.0f} s")
        ci.provision_key(stack_dir)
        for gateway in system.gateways():
            preflight(gateway)
        run_id = os.urandom(4).hex()
        ledger = Ledger(system.gateways(), run_id)
        ledger.setup()
        process = stack.enter_context(locust(system.gateways(), users, run_id, out))
        ledger.start()
        system.ledger = ledger
        stack.callback(ledger.stop)
        print(f"chaos: load and writer running; warm-up {WARM_UP_S:.0f} s")
        time.sleep(WARM_UP_S)
        outcomes = _apply(faults, system, ledger, process, out)
        ledger.fault = ""
        # Every outcome ends where the next begins (or now).
        ran = [o for o in outcomes if not o.skipped]
        for current, following in zip(ran, [*ran[1:], None], strict=True):
            current.ended = following.injected if following else time.time()
        ledger.stop()
        print("chaos: stopping Locust")
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
        print("chaos: verifying the ledger")
        findings, counts = verify(ledger, system.gateways()[0])
    calls = seen_calls(ledger, out / "requests.csv")
    for outcome in outcomes:
        if not outcome.skipped:
            figures(outcome, calls, findings)
    _write(out, ledger, outcomes, findings, counts)
    text = table(outcomes)
    print()
    print(text)
    print()
    print(
        f"checked: {counts.get('keys', 0)} keys created, {counts.get('rotations', 0)} rotated, "
        f"{counts.get('documents', 0)} documents, {counts.get('events', 0)} metrics events "
        f"acknowledged; {counts.get('unknown_outcomes', 0)} writes of unknown outcome"
    )
    for finding in findings:
        print(f"FINDING {finding.kind}: {finding.what}: {finding.detail} (fault {finding.fault})")
    failed = (
        findings
        or any(o.recovered is None for o in outcomes if not o.skipped)
        or any(o.hangs or o.server_errors or o.without_retry_after for o in outcomes)
    )
    print(f"results: {out}")
    print("chaos: FAILED" if failed else "chaos: every fault recovered, zero acknowledged loss")
    return 1 if failed else 0


def _wait_clean(ledger: Ledger) -> float | None:
    """Wall time at which the writer's calls were last seen failing, once they have been
    clean for CLEAN_S; None after RECOVERY_TIMEOUT_S."""
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    since = time.time()
    while time.monotonic() < deadline:
        time.sleep(1)
        if ledger.clean_since(since):
            if time.time() - since >= CLEAN_S:
                return since
        else:
            since = time.time()
    return None


def _write(
    out: Path,
    ledger: Ledger,
    outcomes: list[Outcome],
    findings: list[Finding],
    counts: dict[str, int],
) -> None:
    with (out / "calls.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["time", "thread", "operation", "gateway", "status", "retry_after",
                         "ms", "error"])  # fmt: skip
        writer.writerows(
            [c.time, c.thread, c.operation, c.gateway, c.status, int(c.retry_after),
             round(c.ms, 1), c.error]
            for c in ledger.calls
        )  # fmt: skip
    (out / "chaos.md").write_text(table(outcomes) + "\n")
    (out / "chaos.json").write_text(
        json.dumps(
            {
                "outcomes": [asdict(o) for o in outcomes],
                "findings": [asdict(f) for f in findings],
                "checked": counts,
                "mutations": Counter(f"{m.kind}:{m.outcome}" for m in ledger.mutations),
            },
            indent=2,
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m load.chaos", description=__doc__.split("\n\n", 1)[0]
    )
    parser.add_argument(
        "--faults",
        help=f"comma-separated, in order, or ci ({','.join(CI_FAULTS)}); default: all "
        f"({','.join(FAULTS)})",
    )
    parser.add_argument("--users", type=int, help="Locust users (default: the chaos profile's)")
    args = parser.parse_args(argv)
    names = list(FAULTS) if not args.faults else args.faults.split(",")
    if args.faults == "ci":
        names = list(CI_FAULTS)
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        parser.error(f"unknown fault(s) {unknown}; known: {', '.join(FAULTS)}")
    if not ci.stack_ready():
        return 2
    try:
        out = results_folder(RESULTS_ROOT, "chaos")
        return run(names, args.users, out)
    except (PlanError, RunError) as error:
        print(f"chaos: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
