"""What every caller class shares: one request per task, named by contract operation.

Each request is reported to Locust under its operation's name from
``x0_common.contract.OPERATIONS`` (``kem_encapsulate``), with the variant in brackets
where the variants differ in cost (``kem_encapsulate[X-Wing]``, ``search[hybrid]``).
A 429 is reported under ``<name> (429)``, apart from the operation's own row, so rate
limiting is never mistaken for an error nor mixed into its latency; the user then
waits as long as ``Retry-After`` says (at most ``MAX_RETRY_AFTER_S``), as a real caller
would; so after a 503 with ``Retry-After`` (overload), which still counts as an error.
"""

from __future__ import annotations

import base64
import itertools
import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import gevent
from locust import FastHttpUser, constant_throughput

from load import auth
from load.plan import HOSTS_VARIABLE, Plan, current
from load.stats import RATE_LIMITED
from x0_common.contract import OPERATIONS, Operation

PLAN: Plan = current()
BY_NAME: dict[str, Operation] = {op.name: op for op in OPERATIONS if op.http is not None}
MAX_RETRY_AFTER_S = 10.0
# A run id shared by every user of this process: names its keys, collection and nodes.
RUN_ID = os.environ.get("X0_LOAD_RUN_ID") or os.urandom(4).hex()
# Each user calls one of the gateway replicas in X0_LOAD_HOSTS, in turn, and keeps it
# (as a connection behind a Service does).
_hosts = itertools.cycle(
    [h.strip() for h in os.environ.get(HOSTS_VARIABLE, "").split(",") if h.strip()] or [PLAN.host]
)


def b64(data: bytes) -> str:
    """base64url without padding, as the API's binary fields are."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def operation_name(operation: str, variant: str | None = None) -> str:
    """The name a request is reported under."""
    return f"{operation}[{variant}]" if variant else operation


def success_statuses(operation: Operation) -> set[int]:
    """The statuses the contract declares as success for an operation's route."""
    assert operation.http is not None
    return {operation.http.status, *operation.http.other_statuses}


class X0User(FastHttpUser):
    """A caller of the gateway; subclasses set ``caller_class`` (a key of plan.CLASSES).

    FastHttpUser (geventhttpclient) rather than HttpUser (requests): several times less
    CPU per request, which matters when Locust shares the machine's 2 cores with the
    system it loads.
    """

    abstract = True
    caller_class: ClassVar[str]
    host = PLAN.host
    network_timeout = PLAN.request_timeout_s
    connection_timeout = PLAN.request_timeout_s

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        load = PLAN.classes.get(getattr(cls, "caller_class", ""))
        if load is not None:
            # Exactly the plan's users per class; each offers `rate` tasks per second.
            cls.fixed_count = load.users
            cls.wait_time = constant_throughput(load.rate)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.host = next(_hosts)  # before FastHttpUser makes its client for the host
        super().__init__(*args, **kwargs)

    # "setup" while prepare() runs, "teardown" in teardown(): those requests are in
    # Locust's statistics but not in the class's throughput, which counts tasks only.
    phase = "task"

    def on_start(self) -> None:
        self.headers = auth.headers()
        self.phase = "setup"
        try:
            self.prepare()
        finally:
            self.phase = "task"

    def on_stop(self) -> None:
        self.phase = "teardown"
        self.teardown()

    def prepare(self) -> None:
        """What the user makes before its first task (its managed keys)."""

    def teardown(self) -> None:
        """What the user removes when it stops."""

    def context(self) -> dict[str, Any]:
        return {"caller_class": self.caller_class, "phase": self.phase}

    def call(
        self,
        operation: str,
        *,
        variant: str | None = None,
        path: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """One request of ``operation``; its JSON body on success, else None.

        A success status with a body that is not JSON, or that ``check`` finds wrong (it
        returns what is wrong), counts as a failure.
        """
        row = BY_NAME[operation]
        assert row.http is not None
        name = operation_name(operation, variant)
        url = row.http.path.format(**(path or {}))
        retry_after = 0.0
        with self.client.request(
            row.http.method,
            url,
            name=name,
            json=body,
            params=query,
            headers=self.headers,
            catch_response=True,
        ) as response:
            if response.status_code == 429:
                response.request_meta["name"] = name + RATE_LIMITED
                retry_after = _seconds(response.headers.get("Retry-After"))
                response.failure("429 rate limited")
            elif response.status_code not in success_statuses(row):
                response.failure(f"{response.status_code} {_problem_code(response)}")
                if response.status_code == 503 and response.headers:
                    # Overloaded: an error all the same, but a caller backs off as told.
                    retry_after = _seconds(response.headers.get("Retry-After"))
            else:
                try:
                    answer = response.json()
                except ValueError:
                    response.failure(f"{response.status_code} body is not JSON")
                else:
                    wrong = check(answer) if check is not None else None
                    if wrong is None:
                        return answer
                    response.failure(f"wrong answer: {wrong}")
        if retry_after:
            gevent.sleep(min(retry_after, MAX_RETRY_AFTER_S))
        return None


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 1.0
    except ValueError:
        return 1.0  # an HTTP date: wait a second rather than parse it


def _problem_code(response: Any) -> str:
    """The problem+json ``code`` (``timeout``, ``unavailable``), for Locust's failure table."""
    try:
        return str(response.json().get("code", ""))
    except (ValueError, AttributeError, TypeError):  # TypeError: no body (no answer)
        return ""
