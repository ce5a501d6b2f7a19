"""The crypto worker: cryptographic operations, managed keys and beacons."""

from __future__ import annotations

from panels import Kinds, Panel, graph, number
from promql import Service, zero_until_seen

TITLE = "x0 / Crypto"

OPS = "x0_crypto_ops_total"
NOT_OK = 'outcome!="ok"'
HANDLED = "x0_responder_handled_total"
DEAD_LETTERED = "x0_responder_dead_lettered_total"


def panels() -> list[Panel]:
    s = Service("crypto")
    k = Kinds(s)
    handled = s.rate(HANDLED)
    dead_lettered = zero_until_seen(s.rate(DEAD_LETTERED, "reason"), handled)
    key_ops = s.rate(HANDLED, where='type=~"crypto[.]keys[.].*"')
    key_failures = zero_until_seen(
        s.rate("x0_crypto_key_failures_total", "operation", "code"), key_ops
    )
    return [
        number("Operations/s", "Cryptographic operations per second.", s.rate(OPS), unit="ops"),
        number(
            "Failure ratio",
            "Share of cryptographic operations that failed.",
            s.share(OPS, NOT_OK),
            unit="percentunit",
            red_from=0.01,
        ),
        number(
            "Managed keys",
            "Managed keys stored (the table's count, the same on every replica).",
            s.gauge("x0_crypto_managed_keys", op="max"),
        ),
        number(
            "Dead-lettered/s",
            "Crypto requests parked on the DLQ per second.",
            zero_until_seen(s.rate(DEAD_LETTERED), handled),
            unit="ops",
            red_from=1e-6,
        ),
        k.rates(
            "Operations by algorithm and operation",
            "Cryptographic operations per second, per algorithm and operation.",
            OPS,
            "algorithm",
            "operation",
        ),
        k.rates(
            "Operations by outcome",
            "Cryptographic operations per second by algorithm and outcome (ok or the code).",
            OPS,
            "algorithm",
            "outcome",
        ),
        k.ratio(
            "Failure ratio by algorithm",
            "Share of each algorithm's operations whose outcome was not ok.",
            OPS,
            NOT_OK,
            "algorithm",
        ),
        k.latency(
            "Operation p99 by algorithm",
            "Time of one cryptographic operation, 99th percentile, per algorithm.",
            "x0_crypto_op_duration_seconds",
            "algorithm",
            qs=(0.99,),
        ),
        k.rates(
            "Key rotations",
            "Managed key rotations per second, manual or automatic.",
            "x0_crypto_key_rotations_total",
            "trigger",
        ),
        graph(
            "Managed-key failures",
            "Failed managed-key operations per second by operation and error code "
            "(zero while none failed).",
            (key_failures, "{{operation}} {{code}}"),
            unit="ops",
        ),
        k.rates(
            "Beacon verifications by result",
            "Beacon verifications per second: ok or the rejection reason. Replays and key "
            "mismatches are attack signals; stale/future point at clock drift.",
            "x0_crypto_beacon_verifications_total",
            "result",
        ),
        graph(
            "Dead-lettered by reason",
            "Crypto requests parked on the DLQ per second, by reason (zero while none).",
            (dead_lettered, "{{reason}}"),
            unit="ops",
        ),
        *k.responder(),
    ]
